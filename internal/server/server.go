package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server timeouts: a slow client cannot hold a connection open for long.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 60 * time.Second // a waiting refresh answers within it
	IdleTimeout       = 90 * time.Second
)

// Routes selects the routes one Server serves, so that the webhook and the
// admin routes can listen on addresses of their own.
type Routes int

const (
	// AllRoutes serves every route on one listener.
	AllRoutes Routes = iota
	// PublicRoutes serves what Prismatic and load balancers need: the
	// webhook route, /healthz and /readyz.
	PublicRoutes
	// AdminRoutes serves what operators need: /metrics, /status, the admin
	// API under /v1, and /healthz and /readyz too.
	AdminRoutes
)

// Options are what the server routes to. Nil handlers leave their routes
// unregistered.
type Options struct {
	// Routes selects which of the routes below this server serves.
	Routes Routes
	// Intake handles POST /webhooks/prismatic.
	Intake http.Handler
	// Ready reports whether the daemon can serve, its state and why. GET
	// /readyz answers 200 when ok, else 503, with the state in the body;
	// the reason (which can name addresses and errors) only to a caller
	// with the admin token.
	Ready func(ctx context.Context) (ok bool, state, detail string)
	// Status builds GET /status; admin says whether the caller showed the
	// admin token (instance ids are shown only then).
	Status func(ctx context.Context, admin bool) any
	// Metrics serves GET /metrics.
	Metrics http.Handler
	// Admin serves /v1; nil leaves it off.
	Admin *Admin
	// Log gets the server's own errors.
	Log *slog.Logger
}

// Server is the daemon's HTTP server. Open starts it, Close stops it.
type Server struct {
	http *http.Server
	ln   net.Listener
	done chan struct{}
	err  error
}

// New builds the server and its routes.
func New(opts Options) *Server {
	mux := http.NewServeMux()
	public, admin := opts.Routes != AdminRoutes, opts.Routes != PublicRoutes
	if !public {
		opts.Intake = nil
	}
	if !admin {
		opts.Status, opts.Metrics = nil, nil
	}
	if opts.Intake != nil {
		mux.Handle("/webhooks/prismatic", opts.Intake)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	isAdmin := func(*http.Request) bool { return false }
	if opts.Admin != nil && opts.Admin.Token != "" {
		isAdmin = opts.Admin.authorized
	}
	if opts.Ready != nil {
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			ok, state, detail := opts.Ready(r.Context())
			status := http.StatusOK
			if !ok {
				status = http.StatusServiceUnavailable
			}
			body := map[string]string{"status": state}
			if detail != "" && isAdmin(r) {
				body["detail"] = detail
			}
			writeJSON(w, status, body)
		})
	}
	if opts.Status != nil {
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, opts.Status(r.Context(), isAdmin(r)))
		})
	}
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	if opts.Admin != nil && admin {
		opts.Admin.Register(mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{http: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
}

// Open listens on addr and serves in the background. Listening first means a
// taken port is an error here, not later.
func (s *Server) Open(addr string) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	s.Serve(ln)
	return nil
}

// Listen listens on a TCP address, with an error that names it.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves on a listener the caller opened, in the background.
func (s *Server) Serve(ln net.Listener) {
	s.ln, s.done = ln, make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
}

// Addr returns the address the server listens on (useful with port 0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops accepting connections and waits for the requests in flight
// until ctx ends; then it closes what is left.
func (s *Server) Close(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	<-s.done
	return errors.Join(err, s.err)
}
