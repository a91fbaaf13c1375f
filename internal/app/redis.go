package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of the Redis client, applied where the URL does not set the
// option. go-redis' own defaults (a 5s dial, five dials per attempt, four
// attempts) made a webhook wait seconds for its 503 when Redis was down;
// these answer a refused connection at once and a silent one within about
// a second per attempt.
const (
	// DefaultRedisDialTimeout bounds one connection attempt (dial_timeout).
	DefaultRedisDialTimeout = 500 * time.Millisecond
	// DefaultRedisReadTimeout and DefaultRedisWriteTimeout bound one
	// command's reply and send (read_timeout, write_timeout).
	DefaultRedisReadTimeout  = time.Second
	DefaultRedisWriteTimeout = time.Second
	// redisDialAttempts is how many times one command dials before it
	// fails; the command's own retries (max_retries, or max_redirects on
	// a cluster) come on top.
	redisDialAttempts = 1
)

// OpenRedis returns a client for one of the URL forms the daemon accepts:
//
//	redis://[user:password@]host:port[/db]          one server (rediss:// for TLS)
//	redis-cluster://[user:password@]host:port,host:port[?options]
//	                                                 Redis Cluster, from any seed nodes (rediss-cluster:// for TLS)
//	redis-sentinel://[user:password@]host:port,host:port/master-name[/db][?sentinel_password=…]
//	                                                 a master found through Sentinel (rediss-sentinel:// for TLS)
//
// Options in the query are go-redis' URL options (dial_timeout, read_timeout,
// max_retries, pool_size, …; for Sentinel the timeouts, retries and pool
// options); the timeouts the URL leaves out take the defaults above. A
// cluster client reloads its slot map as soon as a node fails (see
// followTopology).
func OpenRedis(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", redactErr(err, rawURL))
	}
	switch u.Scheme {
	case "redis", "rediss":
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", redactErr(err, rawURL))
		}
		opts.DialTimeout = orDefault(opts.DialTimeout, DefaultRedisDialTimeout)
		opts.ReadTimeout = orDefault(opts.ReadTimeout, DefaultRedisReadTimeout)
		opts.WriteTimeout = orDefault(opts.WriteTimeout, DefaultRedisWriteTimeout)
		opts.DialerRetries = redisDialAttempts
		return redis.NewClient(opts), nil
	case "redis-cluster", "rediss-cluster":
		opts, err := clusterOptions(u)
		if err != nil {
			return nil, err
		}
		c := redis.NewClusterClient(opts)
		followTopology(c)
		return c, nil
	case "redis-sentinel", "rediss-sentinel":
		opts, err := sentinelOptions(u)
		if err != nil {
			return nil, err
		}
		return redis.NewFailoverClient(opts), nil
	}
	return nil, fmt.Errorf("redis url: scheme %q: want redis, rediss, redis-cluster, rediss-cluster, redis-sentinel or rediss-sentinel", u.Scheme)
}

// clusterOptions turns redis-cluster://a,b,c?… into go-redis' cluster URL
// form (redis://a?addr=b&addr=c&…).
func clusterOptions(u *url.URL) (*redis.ClusterOptions, error) {
	hosts := splitHosts(u.Host)
	if len(hosts) == 0 {
		return nil, fmt.Errorf("redis url: %s needs at least one host:port", u.Scheme)
	}
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	v := *u
	v.Scheme = strings.TrimSuffix(u.Scheme, "-cluster")
	v.Host, v.Path, v.RawQuery = hosts[0], "", q.Encode()
	opts, err := redis.ParseClusterURL(v.String())
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", redactErr(err, u.String()))
	}
	opts.DialTimeout = orDefault(opts.DialTimeout, DefaultRedisDialTimeout)
	opts.ReadTimeout = orDefault(opts.ReadTimeout, DefaultRedisReadTimeout)
	opts.WriteTimeout = orDefault(opts.WriteTimeout, DefaultRedisWriteTimeout)
	opts.DialerRetries = redisDialAttempts
	return opts, nil
}

func sentinelOptions(u *url.URL) (*redis.FailoverOptions, error) {
	hosts := splitHosts(u.Host)
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(hosts) == 0 || parts[0] == "" {
		return nil, fmt.Errorf("redis url: %s://host:port[,host:port…]/<master name>[/db] — the master name is missing", u.Scheme)
	}
	opts := &redis.FailoverOptions{MasterName: parts[0], SentinelAddrs: hosts}
	if len(parts) > 1 {
		db, err := strconv.Atoi(parts[1])
		if err != nil || db < 0 {
			return nil, fmt.Errorf("redis url: database %q is not a number", parts[1])
		}
		opts.DB = db
	}
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	q := u.Query()
	opts.SentinelPassword = q.Get("sentinel_password")
	q.Del("sentinel_password")
	// The client options in the query are go-redis' URL options: parse
	// them as a redis:// URL would carry them.
	plain, err := redis.ParseURL((&url.URL{Scheme: "redis", Host: hosts[0], RawQuery: q.Encode()}).String())
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", redactErr(err, u.String()))
	}
	opts.MaxRetries, opts.MinRetryBackoff, opts.MaxRetryBackoff = plain.MaxRetries, plain.MinRetryBackoff, plain.MaxRetryBackoff
	opts.PoolFIFO, opts.PoolSize, opts.PoolTimeout = plain.PoolFIFO, plain.PoolSize, plain.PoolTimeout
	opts.MinIdleConns, opts.MaxIdleConns, opts.MaxActiveConns = plain.MinIdleConns, plain.MaxIdleConns, plain.MaxActiveConns
	opts.ConnMaxIdleTime, opts.ConnMaxLifetime, opts.ClientName = plain.ConnMaxIdleTime, plain.ConnMaxLifetime, plain.ClientName
	opts.DialTimeout = orDefault(plain.DialTimeout, DefaultRedisDialTimeout)
	opts.ReadTimeout = orDefault(plain.ReadTimeout, DefaultRedisReadTimeout)
	opts.WriteTimeout = orDefault(plain.WriteTimeout, DefaultRedisWriteTimeout)
	opts.DialerRetries = redisDialAttempts
	if u.Scheme == "rediss-sentinel" {
		opts.TLSConfig = tlsConfig(hosts[0])
	}
	return opts, nil
}

// orDefault is d, or def when the URL left d unset (zero; a negative value
// is go-redis' "no timeout" and is kept).
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// followTopology makes a cluster client reload its slot map as soon as one
// of its nodes fails, rather than at its periodic reload (a minute by
// default). go-redis reloads by itself on MOVED and ASK and on READONLY
// from a single command, but not when a node refuses connections, times
// out, or answers CLUSTERDOWN — which is all a dead master and its peers
// say until a replica has taken over. Each failure asks for a reload;
// go-redis runs one at a time, from any reachable node, and at most about
// five a second while failures keep coming, so the map is right again a
// fraction of a second after the cluster's own failover ends. The hook is
// on every node client, so a command whose first attempt failed is retried
// (MaxRedirects) on the new map.
func followTopology(c *redis.ClusterClient) {
	h := reloadOnFailure{reload: func() { c.ReloadState(context.Background()) }}
	c.OnNewNode(func(node *redis.Client) { node.AddHook(h) })
}

// watchServer calls changed, without blocking, whenever a new connection of
// c reaches another server than the connection before it: a Sentinel
// failover client dials the new master after a switch, and a DNS name that
// a managed Redis moves to a promoted replica resolves to another address.
func watchServer(c *redis.Client, changed func(from, to string)) {
	c.AddHook(&serverWatch{changed: changed})
}

// serverWatch is the go-redis hook of watchServer.
type serverWatch struct {
	changed func(from, to string)
	mu      sync.Mutex
	last    string
}

func (w *serverWatch) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return conn, err
		}
		to := conn.RemoteAddr().String()
		w.mu.Lock()
		from := w.last
		w.last = to
		w.mu.Unlock()
		if from != "" && from != to {
			w.changed(from, to)
		}
		return conn, err
	}
}

func (w *serverWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (w *serverWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// reloadOnFailure is a go-redis hook that calls reload after every failure
// that can mean the cluster's topology changed.
type reloadOnFailure struct{ reload func() }

func (h reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil && topologyError(err) {
			h.reload()
		}
		return conn, err
	}
}

func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && topologyError(err) {
			h.reload()
		}
		return err
	}
}

func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err != nil && topologyError(err) || slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Err() != nil && topologyError(c.Err()) }) {
			h.reload()
		}
		return err
	}
}

// topologyError reports whether err can mean that a node died or lost its
// slots: a network failure or timeout, or a Redis Cluster error that says so.
// The caller's own cancellation is not one.
func topologyError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return redis.IsClusterDownError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsLoadingError(err)
}

func splitHosts(s string) []string {
	var out []string
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// redactErr keeps a password in the URL out of an error message.
func redactErr(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil || u.User == nil {
		return err
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}
