package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process of a test's own (a Cluster node, a
// Sentinel group's master or replica, or a sentinel). It is stopped when the
// test ends.
type Server struct {
	// Addr is host:port.
	Addr string
	// Dir is the server's working directory (its config and log).
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
	client *redis.Client
	log    *bytes.Buffer

	mu     sync.Mutex
	killed bool
}

// needBinary returns the path of a Redis program. Without it the test is
// skipped, saying how to install it — or fails when the CI environment
// variable is "true", so that CI never passes by skipping.
func needBinary(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err == nil {
		return bin
	}
	msg := name + " is not installed; install it (Debian: apt-get install redis-server) to run the Redis Cluster and Sentinel tests"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: these suites must run in CI)")
	}
	t.Skip(msg)
	return ""
}

// startServer starts redis-server on a free loopback port with args (after
// --port, --bind and --dir), in a directory of its own under root, and waits
// until it answers PING. With sentinel set it runs as a sentinel: args are
// then written into a config file, which Sentinel needs to record its state.
func startServer(t testing.TB, bin, root, name string, sentinel bool, args ...string) *Server {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, exited: make(chan struct{}), log: new(bytes.Buffer)}
	base := []string{"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", dir}
	if sentinel {
		conf := filepath.Join(dir, "sentinel.conf")
		lines := []string{"bind 127.0.0.1", fmt.Sprintf("port %d", port), "dir " + dir}
		for i := 0; i+1 < len(args); i += 2 {
			lines = append(lines, strings.TrimPrefix(args[i], "--")+" "+args[i+1])
		}
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s.cmd = exec.Command(bin, conf, "--sentinel")
	} else {
		s.cmd = exec.Command(bin, append(append(base, "--save", "", "--appendonly", "no"), args...)...)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(s.Kill)
	s.client = redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = s.client.Close() })
	waitUntil(t, name+" on "+s.Addr+" to answer", func() bool {
		select {
		case <-s.exited:
			t.Fatalf("%s on %s exited at start: %s", name, s.Addr, s.log.String())
		default:
		}
		return s.client.Ping(context.Background()).Err() == nil
	})
	return s
}

// Client is a plain client of this one server (not a cluster client).
func (s *Server) Client() *redis.Client { return s.client }

// Kill stops the server with SIGKILL, as a crash would, and waits until
// it has exited. Killing a server twice is harmless.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.killed {
		return
	}
	s.killed = true
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Alive reports whether the server was not killed.
func (s *Server) Alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.killed
}

// Role is the first word of ROLE: "master", "slave" or "sentinel" (""
// when the server does not answer).
func (s *Server) Role(ctx context.Context) string {
	v, err := s.client.Do(ctx, "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return ""
	}
	role, _ := v[0].(string)
	return role
}

// info returns one field of INFO section, "" when absent or unanswered.
func (s *Server) info(ctx context.Context, section, field string) string {
	out, err := s.client.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(out, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

// replicasCaughtUp reports whether every replica of this master has
// acknowledged all of its replication stream.
func (s *Server) replicasCaughtUp(ctx context.Context) bool {
	out, err := s.client.Info(ctx, "replication").Result()
	if err != nil {
		return false
	}
	var offset string
	var replicas []string
	for _, line := range strings.Split(out, "\r\n") {
		if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
			offset = v
		}
		if strings.HasPrefix(line, "slave") && strings.Contains(line, "offset=") {
			replicas = append(replicas, line)
		}
	}
	if offset == "" || len(replicas) == 0 {
		return false
	}
	for _, r := range replicas {
		if !strings.Contains(r+",", ",offset="+offset+",") {
			return false
		}
	}
	return true
}

// crash stops a master the way a crash of the machine would, but only once
// its replicas hold every write it acknowledged: writes are paused, the
// replicas allowed to catch up, and the process killed. Redis replicates
// asynchronously, so a real crash can also lose the last writes a master
// acknowledged; that loss is Redis's, documented by Redis, and a test that
// checks that the daemon loses nothing must not count it.
func (s *Server) crash(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	if err := s.client.Do(ctx, "CLIENT", "PAUSE", 5000, "WRITE").Err(); err != nil {
		t.Fatalf("pause writes on %s: %v", s.Addr, err)
	}
	waitUntil(t, "the replicas of "+s.Addr+" to catch up", func() bool { return s.replicasCaughtUp(ctx) })
	s.Kill()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitUntil polls cond every 10ms until it holds, failing the test after
// 30s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StartServer starts a standalone redis-server of the test's own, with
// extra args (e.g. "--appendonly", "yes"). Without redis-server the test is
// skipped (or fails when CI=true).
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	return startServer(t, needBinary(t, "redis-server"), t.TempDir(), "redis", false, args...)
}

// URL is a redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr }
