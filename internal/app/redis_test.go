package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/redistest"
)

func TestOpenRedisURLForms(t *testing.T) {
	for _, tc := range []struct {
		url     string
		check   func(t *testing.T, c redis.UniversalClient)
		wantErr string
	}{
		{url: "redis://127.0.0.1:6379/2", check: func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.Addr != "127.0.0.1:6379" || o.DB != 2 {
				t.Errorf("options %s db %d", o.Addr, o.DB)
			}
			if o.DialTimeout != DefaultRedisDialTimeout || o.ReadTimeout != DefaultRedisReadTimeout || o.DialerRetries != 1 {
				t.Errorf("dial timeout %v, read timeout %v, dials per attempt %d: want the daemon's defaults", o.DialTimeout, o.ReadTimeout, o.DialerRetries)
			}
		}},
		{url: "redis://127.0.0.1:6379?dial_timeout=3s&read_timeout=0", check: func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.DialTimeout != 3*time.Second || o.ReadTimeout != 0 {
				t.Errorf("dial timeout %v, read timeout %v: want the URL's 3s and none", o.DialTimeout, o.ReadTimeout)
			}
		}},
		{url: "rediss://:pw@redis.example:6380", check: func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.TLSConfig == nil || o.Password != "pw" {
				t.Errorf("TLS %v password %q", o.TLSConfig, o.Password)
			}
		}},
		{url: "redis-cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000?read_timeout=2s", check: func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.ClusterClient).Options()
			if strings.Join(o.Addrs, ",") != "10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000" || o.ReadTimeout.String() != "2s" {
				t.Errorf("cluster addrs %v read timeout %v", o.Addrs, o.ReadTimeout)
			}
			if o.DialTimeout != DefaultRedisDialTimeout || o.DialerRetries != 1 {
				t.Errorf("cluster dial timeout %v, dials per attempt %d: want the daemon's defaults", o.DialTimeout, o.DialerRetries)
			}
		}},
		{url: "rediss-cluster://u:pw@10.0.0.1:7000", check: func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.ClusterClient).Options()
			if o.TLSConfig == nil || o.Username != "u" || o.Password != "pw" {
				t.Errorf("cluster TLS %v user %q", o.TLSConfig, o.Username)
			}
		}},
		{url: "redis-sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster/3?sentinel_password=spw&read_timeout=3s&max_retries=1", check: func(t *testing.T, c redis.UniversalClient) {
			fc, ok := c.(*redis.Client)
			if !ok {
				t.Fatalf("sentinel client is %T", c)
			}
			o := fc.Options()
			if o.DB != 3 || o.Password != "pw" || o.ReadTimeout != 3*time.Second || o.MaxRetries != 1 || o.DialTimeout != DefaultRedisDialTimeout {
				t.Errorf("sentinel db %d, read timeout %v, retries %d, dial timeout %v", o.DB, o.ReadTimeout, o.MaxRetries, o.DialTimeout)
			}
		}},
		{url: "redis-sentinel://10.0.0.1:26379/m?colour=blue", wantErr: "unexpected option: colour"},
		{url: "redis-sentinel://10.0.0.1:26379", wantErr: "master name is missing"},
		{url: "redis-sentinel://10.0.0.1:26379/m/x", wantErr: "is not a number"},
		{url: "redis-cluster://", wantErr: "at least one host"},
		{url: "memcached://x:1", wantErr: "want redis, rediss"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			c, err := OpenRedis(tc.url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.check(t, c)
		})
	}
}

// TestClusterClientFollowsAFailover: after a master died and its replica
// took over, the daemon's cluster client writes to the slots the dead master
// served again within moments — each failure reloads its slot map — instead
// of dialling the dead master until go-redis' periodic reload a minute
// later.
func TestClusterClientFollowsAFailover(t *testing.T) {
	c := redistest.StartCluster(t)
	rdb, err := OpenRedis(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	key := c.Prefix + "k"
	if err := rdb.Set(ctx, key, "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	replicas := c.Crash(t, c.MasterOf(t, key))
	c.WaitFailover(t, replicas)
	// Nothing used the client during the failover: its slot map still names
	// the dead master. The first writes may fail (a node asked for the map
	// may not have heard of the takeover yet); within ten seconds — a sixth
	// of go-redis' own reload interval — they must not.
	deadline := time.Now().Add(10 * time.Second)
	for tries := 1; ; tries++ {
		err := rdb.Set(ctx, key, "after", 0).Err()
		if err == nil {
			t.Logf("written at try %d after the failover", tries)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still fail 10s after the failover (%d tries): %v", tries, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "after" {
		t.Fatalf("read back %q, %v; want after", v, err)
	}
}
