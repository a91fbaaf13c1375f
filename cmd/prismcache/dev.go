package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/prismcache/prismcache/internal/app"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/server"
)

// devSecret signs the simulator's webhooks in dev mode; it is not a secret.
const devSecret = "prismcache-dev-secret"

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		listen      = "127.0.0.1:8080"
		redisListen = "127.0.0.1:6379"
		simListen   = "127.0.0.1:8081"
		customers   = prismaticsim.DefaultCustomers
		seed        = 1
		logLevel    = "warn"
		adminToken  string
	)
	fs := newFlagSet("dev [flags]",
		"Runs the whole thing on this machine with nothing installed: an embedded Redis-compatible server\n(miniredis, in memory), the Prismatic simulator seeded with demo data, and the daemon wired to both.\nA taken port is replaced by a free one, and the guide it prints says which.",
		"prismcache dev --customers 10",
		stderr)
	fs.StringVar(&listen, "listen", listen, "address of the daemon")
	fs.StringVar(&redisListen, "redis-listen", redisListen, "address of the embedded Redis")
	fs.StringVar(&simListen, "sim-listen", simListen, "address of the simulator")
	fs.IntVar(&customers, "customers", customers, "demo customers to seed")
	fs.IntVar(&seed, "seed", seed, "seed of the demo data")
	fs.Var(config.Enum(&logLevel, config.LogLevels()...), "log-level", "daemon log level")
	fs.StringVar(&adminToken, "admin-token", "", "admin token of the daemon's /v1 API (default: a random one, printed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if adminToken == "" {
		adminToken = randomToken()
	}
	if fs.NArg() > 0 || customers < 1 || seed < 0 {
		fs.Usage()
		return errUsage
	}
	log := slog.New(devHandler{newLogger(stderr, logLevel, "text").Handler()})
	app.RouteRedisLogs(log)

	// Embedded Redis. miniredis does not expire keys by itself; advancing
	// its clock with real time makes tombstones and dedup entries expire.
	mr := miniredis.NewMiniRedis()
	redisAddr, redisMoved := freeIfTaken(redisListen)
	if err := mr.StartAddr(redisAddr); err != nil {
		return fmt.Errorf("embedded redis: %w", err)
	}
	defer mr.Close()
	stopClock := tickMiniredis(mr)
	defer stopClock()
	redisURL := "redis://" + mr.Addr()

	// Listeners first, so every URL is known before anything starts.
	daemonLn, daemonMoved, err := listenOrFree(listen)
	if err != nil {
		return err
	}
	simLn, simMoved, err := listenOrFree(simListen)
	if err != nil {
		daemonLn.Close()
		return err
	}
	daemonURL, simURL := "http://"+daemonLn.Addr().String(), "http://"+simLn.Addr().String()

	sim, err := prismaticsim.New(prismaticsim.Options{
		Seed: uint64(seed), Customers: customers,
		WebhookURL: daemonURL + "/webhooks/prismatic", WebhookSecret: devSecret,
		Logger: log,
	})
	if err != nil {
		daemonLn.Close()
		simLn.Close()
		return err
	}
	defer sim.Close()
	simSrv := newSimServer(sim)
	go func() { _ = simSrv.Serve(simLn) }()
	defer simSrv.Close()

	cfg := config.Default()
	cfg.Listen = daemonLn.Addr().String()
	cfg.RedisURL = redisURL
	cfg.WebhookSecrets = []string{devSecret}
	cfg.PrismaticURL = simURL
	cfg.PrismaticToken = prismaticsim.DefaultAccessToken
	cfg.PrismaticRate = 200
	cfg.LogLevel = logLevel
	cfg.AdminToken = adminToken
	live := &liveLines{w: stdout}
	a := &app.App{Config: cfg, Version: buildVersion(), Log: log, Listener: daemonLn, OnDelivery: live.delivery, OnResult: live.result}
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Close(sctx)
	}()

	if err := waitSynced(ctx, a, 30*time.Second); err != nil {
		return err
	}
	printGuide(stdout, guide{
		daemon: daemonURL, sim: simURL, redisURL: redisURL, secret: devSecret, adminToken: adminToken,
		moved: movedNote(daemonMoved, listen, redisMoved, redisListen, simMoved, simListen),
		demo:  demoOf(sim), exe: selfCommand(),
	})
	live.start()
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nshutting down")
	return nil
}

// devHandler leaves out the daemon's warning that it cannot read Redis's
// eviction policy: the embedded miniredis does not answer INFO memory, and
// it never evicts anything.
type devHandler struct{ slog.Handler }

func (h devHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "could not read Redis's eviction policy") {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h devHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return devHandler{h.Handler.WithAttrs(attrs)}
}

func (h devHandler) WithGroup(name string) slog.Handler { return devHandler{h.Handler.WithGroup(name)} }

// listenOrFree listens on addr, or on a free port of the same host when addr
// is taken.
func listenOrFree(addr string) (net.Listener, bool, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, false, nil
	}
	host, _, serr := net.SplitHostPort(addr)
	if serr != nil {
		return nil, false, fmt.Errorf("listen on %s: %w", addr, err)
	}
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, false, fmt.Errorf("listen on %s: %w", addr, errors.Join(err, err2))
	}
	return ln, true, nil
}

// freeIfTaken returns addr when it can be listened on, else a free port on
// the same host (for servers that take an address, not a listener).
func freeIfTaken(addr string) (string, bool) {
	ln, moved, err := listenOrFree(addr)
	if err != nil {
		return addr, false
	}
	got := ln.Addr().String()
	ln.Close()
	return got, moved
}

func tickMiniredis(mr *miniredis.Miniredis) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				mr.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return func() { close(done) }
}

// waitSynced waits for the first full sync and for the work it queued.
func waitSynced(ctx context.Context, a *app.App, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := a.Store().Synced(ctx)
		if err == nil && ok {
			if s, err := a.WorkStats(ctx); err == nil && s.Queued == 0 && s.Leased == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the first sync did not finish within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type demo struct {
	id, name, customer, key, value, connection string
}

// demoOf picks the demo instance and a plain config variable of it to change.
func demoOf(sim *prismaticsim.Sim) demo {
	d := demo{id: sim.DemoInstanceID()}
	in, err := sim.Instance(d.id)
	if err != nil {
		return d
	}
	d.name, d.customer = in.Name, in.CustomerExternalID
	d.connection = "<connection key>"
	for _, cv := range in.Config {
		if cv.DataType == "CONNECTION" {
			d.connection = cv.Key
			break
		}
	}
	for _, cv := range in.Config {
		if cv.Value == nil {
			continue
		}
		if v := newDemoValue(cv.DataType, *cv.Value); v != "" {
			d.key, d.value = cv.Key, v
			return d
		}
	}
	return d
}

// newDemoValue suggests a valid value, different from old, for a variable of
// dataType; "" when it has none to suggest.
func newDemoValue(dataType, old string) string {
	switch dataType {
	case "STRING":
		return "changed-by-you"
	case "NUMBER":
		if old == "500" {
			return "250"
		}
		return "500"
	case "BOOLEAN":
		if old == "true" {
			return "false"
		}
		return "true"
	}
	return ""
}

type guide struct {
	daemon, sim, redisURL, secret, adminToken, moved, exe string
	demo                                                  demo
}

func printGuide(w io.Writer, g guide) {
	key, value := g.demo.key, g.demo.value
	if key == "" {
		key, value = "<key>", "<value>"
	}
	redisCLIPort := g.redisURL[strings.LastIndex(g.redisURL, ":")+1:]
	fmt.Fprintf(w, `
prismcache dev is running. Everything is in memory; Ctrl-C stops it.

  daemon          %[1]s   webhooks POST /webhooks/prismatic · /status · /metrics · admin API /v1
  simulator       %[2]s   GraphQL /api · admin /admin (docs/simulator.md)
  redis           %[3]s   embedded miniredis
  webhook secret  %[4]s
  admin token     %[5]s
%[6]s
In another shell, this makes every prismcache command of the README talk to it:

  %[7]s
  export PRISMCACHE_URL=%[1]s PRISMCACHE_REDIS_URL=%[3]s
  export PRISMCACHE_WEBHOOK_SECRET=%[4]s PRISMCACHE_ADMIN_TOKEN=%[5]s
  export PRISMATIC_URL=%[2]s PRISMATIC_TOKEN=%[8]s

The demo instance is %[9]q of customer %[10]s:
  %[11]s

Try it — change a config value in the simulator. Prismatic stores the change but
does not run it until a deploy, so the cache keeps the old value of %[12]s and marks it stale:

  curl -s -X PUT %[2]s/admin/instances/%[11]s/config/%[12]s -d '{"value":"%[13]s"}'
  %[14]s get --redis-url %[3]s %[11]s

Deploy it. Prismatic sends instance.deployed, the daemon fetches the instance and
the entry holds the new value, fresh (stale false, rev grown):

  curl -s -X POST %[2]s/admin/instances/%[11]s/deploy
  %[14]s get --redis-url %[3]s %[11]s

Ask the daemon to fetch it now, send it a signed sample event, see its state:

  %[14]s refresh --url %[1]s --admin-token %[5]s %[11]s
  %[14]s sim trigger instance.updated --url %[1]s --secret %[4]s --instance %[11]s
  curl -s %[1]s/status

Break its connection, or disable it, and watch the lines below:

  curl -s -X POST %[2]s/admin/instances/%[11]s/connections/%[15]s/break
  curl -s -X POST %[2]s/admin/instances/%[11]s/disable

Read Redis as your apps would (docs/redis.md):

  redis-cli -p %[16]s HGETALL 'prismcache:instance:{%[11]s}'

Live events:
`, g.daemon, g.sim, g.redisURL, g.secret, g.adminToken, g.moved, pathLine(g.exe), prismaticsim.DefaultAccessToken,
		g.demo.name, g.demo.customer, g.demo.id, key, value, g.exe, g.demo.connection, redisCLIPort)
}

// pathLine puts this binary on the PATH as "prismcache", or, under go run,
// defines it as an alias.
func pathLine(exe string) string {
	if strings.HasPrefix(exe, "go run") {
		return "alias prismcache='" + exe + "'"
	}
	dir, err := filepath.Abs(filepath.Dir(exe))
	if err != nil {
		return "# (put " + exe + " on your PATH as prismcache)"
	}
	return "export PATH=" + shellQuote(dir) + ":$PATH"
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// randomToken is a fresh admin token: 128 random bits in hex.
func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics instead)
	return hex.EncodeToString(b)
}

func movedNote(daemonMoved bool, daemon string, redisMoved bool, redis string, simMoved bool, sim string) string {
	var b strings.Builder
	if daemonMoved {
		fmt.Fprintf(&b, "  (%s was taken, so the daemon listens on a free port)\n", daemon)
	}
	if redisMoved {
		fmt.Fprintf(&b, "  (%s was taken — is another Redis running? — so the embedded one uses a free port)\n", redis)
	}
	if simMoved {
		fmt.Fprintf(&b, "  (%s was taken, so the simulator listens on a free port)\n", sim)
	}
	return b.String()
}

// selfCommand is how the user can run this binary again: its path when it
// was built (make run), "go run ./cmd/prismcache" when it runs from go run.
func selfCommand() string {
	if exe := os.Args[0]; !strings.Contains(exe, "go-build") {
		return exe
	}
	return "go run ./cmd/prismcache"
}

// liveLines prints one line per webhook and per fetch once the guide is out.
type liveLines struct {
	mu sync.Mutex
	w  io.Writer
	on bool
}

func (l *liveLines) start() {
	l.mu.Lock()
	l.on = true
	l.mu.Unlock()
}

func (l *liveLines) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.on {
		return
	}
	fmt.Fprintf(l.w, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func (l *liveLines) delivery(d server.Delivery) {
	detail := ""
	if d.Detail != "" {
		detail = " (" + d.Detail + ")"
	}
	l.printf("webhook  %-28s %s → %s %d%s", d.Event, short(d.Instance), d.Outcome, d.Status, detail)
}

func (l *liveLines) result(r refresh.Result) {
	switch {
	case r.Error != "":
		l.printf("fetch    %s → failed: %s", short(r.ID), r.Error)
	case r.Change != "":
		l.printf("fetch    %s → %s, rev %d", short(r.ID), r.Change, r.Rev)
	default:
		l.printf("fetch    %s → nothing to write (%s)", short(r.ID), r.Skip)
	}
}

func short(id string) string {
	if len(id) > 24 {
		return id[:24] + "…"
	}
	return id
}
