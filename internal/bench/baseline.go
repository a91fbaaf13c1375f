package bench

import (
	"io"
	"net/http"
	"time"

	"github.com/prismcache/prismcache/internal/webhook"
)

// BaselineHandler is the ceiling the intake is compared with: it does what
// every webhook costs before any Redis work — read the body (capped as the
// daemon caps it) and check its HMAC with the daemon's own verifier — and
// answers a small JSON body, as the daemon does. It is served by a process
// of its own (prismbench baseline), never by the process sending the load.
func BaselineHandler(secret string) http.Handler {
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
