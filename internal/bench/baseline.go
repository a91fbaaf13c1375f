package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
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
	return baseline(secret, func(ctx context.Context, body []byte) error {
		sum := sha256.Sum256(body)
		return rdb.SetNX(ctx, prefix+"floor:"+hex.EncodeToString(sum[:]), "1", time.Hour).Err()
	})
}

func baseline(secret string, record func(context.Context, []byte) error) http.Handler {
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
			if err := record(r.Context(), body); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
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
