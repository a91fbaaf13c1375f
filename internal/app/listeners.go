package app

import (
	"context"
	"net"

	"github.com/prismcache/prismcache/internal/server"
)

// sharedListenerWarning is logged at start-up when the admin routes share a
// listener that is not on loopback.
const sharedListenerWarning = "/metrics, /status and the admin API /v1 are served on --listen, which is not a loopback address: " +
	"set --admin-listen (e.g. 127.0.0.1:9090) so that the public port serves only the webhook route and health checks (docs/operations.md)"

// openServers starts the HTTP servers: one on --listen with every route, or,
// with --admin-listen (or App.AdminListener), one with the webhook route and
// health checks and one with the admin routes. Both listen before either
// serves, so a taken port fails the start with nothing left running.
func (a *App) openServers(opts server.Options) error {
	cfg := a.Config
	separate := cfg.AdminListen != "" || a.AdminListener != nil
	main, err := listenOn(a.Listener, cfg.Listen)
	if err != nil {
		return err
	}
	if !separate {
		opts.Routes = server.AllRoutes
		a.srv = server.New(opts)
		a.srv.Serve(main)
		if !loopback(main.Addr()) {
			a.log().Warn(sharedListenerWarning, "listen", main.Addr().String())
		}
		return nil
	}
	adminLn, err := listenOn(a.AdminListener, cfg.AdminListen)
	if err != nil {
		_ = main.Close()
		return err
	}
	opts.Routes = server.PublicRoutes
	a.srv = server.New(opts)
	opts.Routes = server.AdminRoutes
	a.adminSrv = server.New(opts)
	a.srv.Serve(main)
	a.adminSrv.Serve(adminLn)
	return nil
}

// closeAdminServer stops the admin server, if there is one, like the main
// one: requests in flight get until ctx ends.
func (a *App) closeAdminServer(ctx context.Context) error {
	if a.adminSrv == nil {
		return nil
	}
	return a.adminSrv.Close(ctx)
}

// listenOn returns ln when the caller gave one, else listens on addr.
func listenOn(ln net.Listener, addr string) (net.Listener, error) {
	if ln != nil {
		return ln, nil
	}
	return server.Listen(addr)
}

// loopback reports whether addr is a loopback address (127.0.0.0/8, ::1).
func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// AdminAddr returns the address that serves /metrics, /status and /v1: the
// admin listener's, or the main one's when there is none.
func (a *App) AdminAddr() string {
	if a.adminSrv != nil {
		return a.adminSrv.Addr()
	}
	return a.Addr()
}

// AdminURL returns the base URL of AdminAddr.
func (a *App) AdminURL() string { return "http://" + a.AdminAddr() }
