package bench

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/webhook"
)

// BaselineHandler is the ceiling the intake is compared with: it does what
// every webhook costs before any Redis work — read the body (capped as the
// daemon caps it) and check its HMAC with the daemon's own verifier — and
// answers a small JSON body, as the daemon does. It is served by a process
// of its own (prismbench baseline), never by the process sending the load.
func BaselineHandler(secret string) http.Handler { return baseline(secret, nil) }

// FloorHandler is BaselineHandler plus the least any intake that never
// loses an acknowledged webhook must do: record the body in Redis before
// answering — one SET NX of its digest, through a client that batches
// concurrent callers' commands as the daemon's does — and answer 503 when
// Redis fails. It does not parse the body, decide anything or queue work,
// so the daemon cannot be cheaper than it: its throughput bounds the ratio
// to the ceiling that any design reaches on the same machine.
func FloorHandler(secret string, rdb redis.UniversalClient, prefix string) http.Handler {
	return baseline(secret, func(ctx context.Context, _ *http.Request, body []byte) error {
		sum := sha256.Sum256(body)
		return rdb.SetNX(ctx, prefix+"floor:"+hex.EncodeToString(sum[:]), "1", time.Hour).Err()
	})
}

// The effect floor's scripts.
var (
	//go:embed lua/effect_stale.lua
	effectStaleSrc string
	//go:embed lua/effect_deploy.lua
	effectDeploySrc    string
	effectStaleScript  = redis.NewScript(effectStaleSrc)
	effectDeployScript = redis.NewScript(effectDeploySrc)
)

// EffectFloorHandler is FloorHandler doing, in place of the SET NX, the
// least work in Redis that the daemon's guarantees take per event, with
// none of its own machinery: parse the body (with the daemon's parser),
// then one script call that marks the body applied and applies the event —
// for instance.updated, the stale flag decided on the entry's last update
// time, a new rev and a change message; for instance.deployed, a fetch
// queued in a due set, or marked to run once more when one is in flight
// (effect_stale.lua, effect_deploy.lua). It keeps no entry in memory, reads
// no document, retries no race and answers only 200, 400, 401 and 503. The
// daemon can come close to it but not pass it; its ratio to FloorHandler is
// what the event's own Redis work costs on this machine. The entries it
// marks live under prefix+"effect:"; SeedEffect creates them.
func EffectFloorHandler(secret string, rdb redis.UniversalClient, prefix string) http.Handler {
	work := prefix + "effect:{work}:"
	return baseline(secret, func(ctx context.Context, r *http.Request, body []byte) error {
		ev, err := webhook.Parse(r.Header.Get(webhook.EventHeader), body, time.Now())
		if err != nil {
			return errBadEvent{err}
		}
		if ev.InstanceID == "" {
			return errBadEvent{errors.New("the body names no instance")}
		}
		sum := sha256.Sum256(body)
		mark := hex.EncodeToString(sum[:])
		switch ev.Type {
		case webhook.InstanceUpdated:
			entry := EffectEntryKey(prefix, ev.InstanceID)
			msg := `{"id":"` + ev.InstanceID + `","change":"stale"}`
			return effectStaleScript.Run(ctx, rdb, []string{entry, entry + ":seen:" + mark},
				ev.Timestamp.UnixMilli(), time.Hour.Milliseconds(), prefix+"effect:events", msg).Err()
		case webhook.InstanceDeployed:
			return effectDeployScript.Run(ctx, rdb, []string{work + "due", work + "leases", work + "dirty", work + "seen:" + mark},
				time.Now().UnixMilli(), time.Hour.Milliseconds(), ev.InstanceID).Err()
		}
		return errBadEvent{fmt.Errorf("event %q: the effect floor knows instance.updated and instance.deployed", ev.Type)}
	})
}

// EffectEntryKey is the effect floor's entry of instance id.
func EffectEntryKey(prefix, id string) string { return prefix + "effect:{" + id + "}" }

// SeedEffect creates the effect floor's entries of ids, each with a
// document of docSize bytes, as the daemon's entries have one.
func SeedEffect(ctx context.Context, rdb redis.UniversalClient, prefix string, ids []string, docSize int) error {
	doc := strings.Repeat("x", docSize)
	pipe := rdb.Pipeline()
	for _, id := range ids {
		pipe.HSet(ctx, EffectEntryKey(prefix, id), "doc", doc, "rev", 1, "stale", 0, "updated_event_at", 0, "enabled", 1)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// errBadEvent is a body the effect floor cannot apply: a 400, not a 503.
type errBadEvent struct{ error }

func baseline(secret string, record func(context.Context, *http.Request, []byte) error) http.Handler {
	v := webhook.NewVerifier(secret)
	mux := http.NewServeMux()
	mux.HandleFunc("/webhooks/prismatic", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := v.Verify(body, r.Header.Get(webhook.SignatureHeader)); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if record != nil {
			if err := record(r.Context(), r, body); err != nil {
				status := http.StatusServiceUnavailable
				if errors.As(err, new(errBadEvent)) {
					status = http.StatusBadRequest
				}
				http.Error(w, err.Error(), status)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"status":"accepted"}`+"\n")
	})
	return mux
}

// BaselineServer wraps h with the daemon's server timeouts.
func BaselineServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 90 * time.Second, MaxHeaderBytes: 64 << 10,
	}
}
