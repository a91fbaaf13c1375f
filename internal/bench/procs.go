package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Proc is a child process the harness started: redis-server, the daemon or
// the baseline endpoint. Its output goes to a log file.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
}

func startProc(name, dir string, cmd *exec.Cmd) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	cmd.Stderr = f
	// The children die with the harness, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// PID returns the process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits up to limit, then kills.
func (p *Proc) Stop(limit time.Duration) {
	if p == nil || p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(limit):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-n):], []byte("\n")))
}

// Memory is a process's resident set from /proc/<pid>/status.
type Memory struct {
	// RSS is VmRSS now; Peak is VmHWM, the largest RSS since it started.
	RSS, Peak int64
}

// ReadMemory reads a process's VmRSS and VmHWM.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	return parseStatus(string(b))
}

// parseStatus reads VmRSS and VmHWM (in kB) from the text of
// /proc/<pid>/status.
func parseStatus(s string) (Memory, error) {
	var m Memory
	found := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("%s: unexpected value %q", k, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("%s: %w", k, err)
		}
		if k == "VmRSS" {
			m.RSS = n << 10
		} else {
			m.Peak = n << 10
		}
		found++
	}
	if found != 2 {
		return m, errors.New("no VmRSS/VmHWM in /proc status")
	}
	return m, nil
}

// MB prints bytes in MiB.
func MB(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// FreePort returns a port that was free a moment ago on 127.0.0.1.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Redis is a redis-server of the harness's own, on a free port, without
// persistence, so it can be flushed and filled freely.
type Redis struct {
	*Proc
	URL    string
	Client *redis.Client
	// Addr is the server's host:port.
	Addr string
}

// StartRedis starts redis-server in dir.
func StartRedis(ctx context.Context, dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed (Debian: apt-get install redis-server); the harness needs a real Redis of its own")
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--maxclients", "10000")
	p, err := startProc("redis", dir, cmd)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	r := &Redis{Proc: p, URL: "redis://" + addr + "/0", Client: redis.NewClient(&redis.Options{Addr: addr, PoolSize: 32}), Addr: addr}
	deadline := time.Now().Add(10 * time.Second)
	for r.Client.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) || p.Exited() {
			r.Close()
			return nil, fmt.Errorf("redis-server did not answer on %s:\n%s", addr, p.Tail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r, nil
}

// Close stops the server.
func (r *Redis) Close() {
	_ = r.Client.Close()
	r.Stop(5 * time.Second)
}

// Daemon is `prismcache serve` running as its own process.
type Daemon struct {
	*Proc
	URL string
}

// DaemonConfig is what a scenario sets; every other setting is the
// daemon's default.
type DaemonConfig struct {
	Bin, Dir, Name string
	RedisURL       string
	Prefix         string
	Secret         string
	AdminToken     string
	PrismaticURL   string
	// Rate is --prismatic-rate, Workers --workers.
	Rate    float64
	Workers int
	// ResyncInterval is --resync-interval (long, so periodic passes do not
	// interfere, unless a scenario wants them).
	ResyncInterval time.Duration
	LogLevel       string
	// Defaults passes only the connection and secret settings (Redis,
	// prefix, Prismatic, webhook secret, admin token): every other setting,
	// the log level included, keeps its default.
	Defaults bool
}

// StartDaemon starts the daemon and waits until /healthz answers.
func StartDaemon(ctx context.Context, c DaemonConfig) (*Daemon, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if c.ResyncInterval == 0 {
		c.ResyncInterval = time.Hour
	}
	if c.LogLevel == "" {
		c.LogLevel = "warn"
	}
	cmd := exec.Command(c.Bin, "serve")
	cmd.Env = append(os.Environ(),
		"PRISMCACHE_LISTEN="+addr, "PRISMCACHE_REDIS_URL="+c.RedisURL, "PRISMCACHE_REDIS_PREFIX="+c.Prefix,
		"PRISMCACHE_WEBHOOK_SECRET="+c.Secret, "PRISMCACHE_ADMIN_TOKEN="+c.AdminToken,
		"PRISMATIC_URL="+c.PrismaticURL, "PRISMATIC_TOKEN="+simToken, "PRISMATIC_REFRESH_TOKEN=",
	)
	if !c.Defaults {
		cmd.Env = append(cmd.Env,
			"PRISMCACHE_PRISMATIC_RATE="+strconv.FormatFloat(c.Rate, 'f', -1, 64), "PRISMCACHE_WORKERS="+strconv.Itoa(c.Workers),
			"PRISMCACHE_RESYNC_INTERVAL="+c.ResyncInterval.String(), "PRISMCACHE_LOG_LEVEL="+c.LogLevel,
		)
	}
	p, err := startProc(c.Name, c.Dir, cmd)
	if err != nil {
		return nil, err
	}
	d := &Daemon{Proc: p, URL: "http://" + addr}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(d.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return d, nil
		}
		if time.Now().After(deadline) || p.Exited() || ctx.Err() != nil {
			d.Stop(time.Second)
			return nil, fmt.Errorf("the daemon did not start:\n%s", p.Tail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the daemon gracefully.
func (d *Daemon) Close() { d.Stop(30 * time.Second) }

// Admin calls the daemon's admin API.
func (d *Daemon) Admin(ctx context.Context, method, path, token string) error {
	req, err := http.NewRequestWithContext(ctx, method, d.URL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// StartBaseline runs the baseline endpoint (this executable's "baseline"
// command) as a child process and returns it with its URL, which the child
// prints on its first line of output. With a Redis URL it runs the durable
// floor instead (FloorHandler), recording bodies under prefix; with effect
// too, the effect floor (EffectFloorHandler).
func StartBaseline(ctx context.Context, exe, dir, secret, redisURL, prefix string, effect bool) (*Proc, string, error) {
	name, args := "baseline", []string{"baseline", "-listen", "127.0.0.1:0"}
	if redisURL != "" {
		name, args = "floor", append(args, "-redis", redisURL, "-prefix", prefix)
	}
	if effect {
		name, args = "effect", append(args, "-effect")
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "PRISMBENCH_SECRET="+secret)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc(name, dir, cmd)
	if err != nil {
		return nil, "", err
	}
	line := make(chan string, 1)
	go func() {
		br := bufio.NewReader(out)
		s, _ := br.ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, br)
	}()
	select {
	case s := <-line:
		if !strings.HasPrefix(s, "http://") {
			p.Stop(time.Second)
			return nil, "", fmt.Errorf("%s: unexpected first line %q:\n%s", name, s, p.Tail(10))
		}
		return p, s, nil
	case <-time.After(10 * time.Second):
		p.Stop(time.Second)
		return nil, "", fmt.Errorf("%s did not start", name)
	case <-ctx.Done():
		p.Stop(time.Second)
		return nil, "", ctx.Err()
	}
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// CPUTime returns the CPU time (user + system) a process has used.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat reads utime + stime from the text of /proc/<pid>/stat. The
// command name (field 2) may hold spaces, so fields are counted from the
// closing parenthesis.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed utime/stime in /proc stat")
	}
	return time.Duration(u+st) * clockTick, nil
}

// CPUMeter measures the CPU time named processes use over an interval.
type CPUMeter struct {
	pids  map[string]int
	start map[string]time.Duration
}

// StartCPU starts measuring the processes in pids (name → pid).
func StartCPU(pids map[string]int) *CPUMeter {
	m := &CPUMeter{pids: pids, start: map[string]time.Duration{}}
	for name, pid := range pids {
		m.start[name], _ = CPUTime(pid)
	}
	return m
}

// PerOp returns each process's CPU time since StartCPU divided by n, in µs.
func (m *CPUMeter) PerOp(n int64) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range m.pids {
		t, err := CPUTime(pid)
		if err != nil || n == 0 {
			continue
		}
		out[name] = float64((t - m.start[name]).Microseconds()) / float64(n)
	}
	return out
}
