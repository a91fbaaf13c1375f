package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// roundTrips counts the client's round trips to Redis: each command or
// pipeline is one.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// BenchmarkIntake is the daemon's webhook handler alone, in process, on the
// real Redis in REDIS_URL (miniredis otherwise): the focused benchmark
// behind the intake scenario, for a CPU profile (-cpuprofile) and a count of
// Redis round trips per webhook (rt/op). Events alternate between
// instance.updated (a stale mark) and instance.deployed (a work-set add)
// over 100 cached instances.
func BenchmarkIntake(b *testing.B) {
	var be redistest.Backend
	if os.Getenv("REDIS_URL") != "" {
		be = redistest.Real(b)
	} else {
		be = redistest.Mini(b)
	}
	rt := &roundTrips{}
	opts := &redis.Options{Addr: be.Client.(*redis.Client).Options().Addr}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	rdb.AddHook(rt)
	ctx := context.Background()
	db := store.New(rdb, store.Options{Prefix: be.Prefix})
	work := refresh.NewWorkSet(rdb, db.Keys(), refresh.WorkSetOptions{})
	actions, err := webhook.NewActions(nil)
	if err != nil {
		b.Fatal(err)
	}
	in := &server.Intake{Verifier: webhook.NewVerifier("s3cret"), Actions: actions, Store: db, Work: work}
	ids := make([]string, 100)
	deployed := time.Now().Add(-time.Hour).UTC()
	for i := range ids {
		ids[i] = fmt.Sprintf("SW5zdGFuY2U6%04d", i)
		v := "15"
		doc := &cache.Doc{ID: ids[i], Name: "bench", Enabled: true, DeployedVersion: 1, LastDeployedAt: &deployed,
			Customer:    cache.Customer{ID: "Q3VzdG9tZXI6MQ==", ExternalID: fmt.Sprintf("cust-%d", i), Name: "Bench"},
			Integration: cache.Integration{ID: "SW50ZWdyYXRpb246MQ==", Name: "Salesforce Sync", VersionNumber: 3},
			Config: map[string]cache.ConfigValue{
				"syncFrequency":        {ID: fmt.Sprintf("SUNWOnN5bmM6%04d", i), Value: &v, Type: "SCHEDULE"},
				"salesforceConnection": {ID: fmt.Sprintf("SUNWOmNvbm46%04d", i), Type: cache.TypeConnection, Status: "ACTIVE"},
			}}
		e := cache.Entry{Doc: doc, Enabled: true, DeployedVersion: 1, FetchedAt: deployed}
		if _, err := db.Apply(ctx, ids[i], cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e}); err != nil {
			b.Fatal(err)
		}
	}
	sg := &Signer{Secret: []byte("s3cret")}
	b.ReportAllocs()
	rt.n.Store(0)
	n := 0
	for b.Loop() {
		typ := webhook.InstanceUpdated
		if (n/len(ids))%2 == 1 {
			typ = webhook.InstanceDeployed
		}
		body := sg.InstanceEvent(typ, ids[n%len(ids)], "bench")
		req := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.EventHeader, typ)
		req.Header.Set(webhook.SignatureHeader, "sha256="+hexHMAC(sg.Secret, body))
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || IsDuplicate(rec.Body.Bytes()) {
			b.Fatalf("webhook %d answered %d: %s", n, rec.Code, rec.Body)
		}
		n++
	}
	b.ReportMetric(float64(rt.n.Load())/float64(n), "rt/op")
}
