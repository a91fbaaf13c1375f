package app

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
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
// pool_size, …).
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
		return redis.NewClient(opts), nil
	case "redis-cluster", "rediss-cluster":
		opts, err := clusterOptions(u)
		if err != nil {
			return nil, err
		}
		return redis.NewClusterClient(opts), nil
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
	opts.SentinelPassword = u.Query().Get("sentinel_password")
	if u.Scheme == "rediss-sentinel" {
		opts.TLSConfig = tlsConfig(hosts[0])
	}
	return opts, nil
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
