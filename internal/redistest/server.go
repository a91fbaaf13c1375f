package redistest

import (
	"bytes"
	"context"
	"errors"
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

	"github.com/prismcache/prismcache/internal/testutil"
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

// serverKind is what startServer starts.
type serverKind int

const (
	plainServer    serverKind = iota
	clusterNode               // with cluster mode on and a bus port of its own
	sentinelServer            // redis-server --sentinel, from a config file
)

// errPortTaken: the ports picked were taken by someone else before the
// server bound them.
var errPortTaken = errors.New("port taken")

// startServer starts redis-server on free loopback ports with args (after
// --port, --bind and --dir), in a directory of its own under root, and waits
// until it answers PING. A sentinel gets args written into a config file,
// which Sentinel needs to record its state. Ports are picked free but may be
// taken by another process before the server binds them: it then tries
// again with others.
func startServer(t testing.TB, bin, root, name string, kind serverKind, args ...string) *Server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, err := tryStartServer(t, bin, filepath.Join(root, name), name, kind, args)
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatal(err)
		}
	}
}

func tryStartServer(t testing.TB, bin, dir, name string, kind serverKind, args []string) (*Server, error) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ports := freePorts(t, 2)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), Dir: dir, exited: make(chan struct{}), log: new(bytes.Buffer)}
	switch kind {
	case sentinelServer:
		conf := filepath.Join(dir, "sentinel.conf")
		lines := []string{"bind 127.0.0.1", fmt.Sprintf("port %d", ports[0]), "dir " + dir}
		for i := 0; i+1 < len(args); i += 2 {
			lines = append(lines, strings.TrimPrefix(args[i], "--")+" "+args[i+1])
		}
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
		s.cmd = exec.Command(bin, conf, "--sentinel")
	default:
		base := []string{"--bind", "127.0.0.1", "--port", fmt.Sprint(ports[0]), "--dir", dir, "--save", "", "--appendonly", "no"}
		if kind == clusterNode {
			base = append(base, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", fmt.Sprint(ports[1]))
		}
		s.cmd = exec.Command(bin, append(base, args...)...)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	dieWithTest(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	s.client = redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
	deadline := time.Now().Add(30 * time.Second)
	for s.client.Ping(context.Background()).Err() != nil {
		select {
		case <-s.exited:
			_ = s.client.Close()
			if strings.Contains(s.log.String(), "Address already in use") {
				return nil, fmt.Errorf("%s on %s: %w", name, s.Addr, errPortTaken)
			}
			return nil, fmt.Errorf("%s on %s exited at start: %s", name, s.Addr, s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			_ = s.client.Close()
			return nil, fmt.Errorf("%s on %s did not answer within 30s: %s", name, s.Addr, s.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(s.Kill)
	t.Cleanup(func() { _ = s.client.Close() })
	return s, nil
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
	return infoField(out, field)
}

// infoField returns the value of field in a reply of "field:value" lines
// (INFO, CLUSTER INFO), "" when absent.
func infoField(out, field string) string {
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
	testutil.Eventually(t, "the replicas of "+s.Addr+" to catch up", func() bool { return s.replicasCaughtUp(ctx) })
	s.Kill()
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // held until all are picked, so none is picked twice
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// StartServer starts a standalone redis-server of the test's own, with
// extra args (e.g. "--appendonly", "yes"). Without redis-server the test is
// skipped (or fails when CI=true).
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	return startServer(t, needBinary(t, "redis-server"), t.TempDir(), "redis", plainServer, args...)
}

// URL is a redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr }
