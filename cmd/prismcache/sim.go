package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
)

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "trigger" {
		return runSimTrigger(ctx, args[1:], stdout, stderr)
	}
	var (
		listen    = "127.0.0.1:8081"
		hookURL   string
		secret    string
		customers = prismaticsim.DefaultCustomers
		seed      = 1
		logLevel  = "info"
		change    prismaticsim.SchemaChange
	)
	fs := newFlagSet("sim [flags]",
		"Runs the Prismatic simulator alone: a GraphQL API at /api, the token exchange at /auth/refresh,\nand an admin API at /admin that changes instances and sends signed webhooks (docs/simulator.md).\n\"prismcache sim trigger <event-type>\" sends one signed sample event to a daemon instead.",
		"prismcache sim --webhook-url http://127.0.0.1:8080/webhooks/prismatic --webhook-secret dev-secret",
		stderr)
	fs.StringVar(&listen, "listen", listen, "address to listen on")
	fs.StringVar(&hookURL, "webhook-url", "", "where to send webhooks (none: events are only logged)")
	fs.StringVar(&secret, "webhook-secret", "", "secret to sign webhooks with (none: unsigned)")
	fs.IntVar(&customers, "customers", customers, "demo customers to seed")
	fs.IntVar(&seed, "seed", seed, "seed of the demo data and of fault injection")
	fs.Var(config.Enum(&logLevel, config.LogLevels()...), "log-level", "least important level logged")
	fs.Func("schema-change", "serve a schema that differs from schema.graphql in one field: `Type.field=NewType`\n(Instance.needsDeploy=Boolean makes it nullable), or Type.field= to remove the field", func(v string) error {
		c, err := prismaticsim.ParseSchemaChange(v)
		change = c
		return err
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || customers < 1 || seed < 0 {
		fs.Usage()
		return errUsage
	}
	sim, err := prismaticsim.New(prismaticsim.Options{
		Seed: uint64(seed), Customers: customers, WebhookURL: hookURL, WebhookSecret: secret,
		Logger: newLogger(stderr, logLevel, "text"), SchemaChange: change,
	})
	if err != nil {
		return err
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := newSimServer(sim)
	go func() { _ = srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "Prismatic simulator on %s\n  GraphQL:   POST %s/api  (Authorization: Bearer %s)\n  refresh:   POST %s/auth/refresh  {\"refresh_token\":\"%s\"}\n  admin:     %s/admin/instances\n  demo:      %s\n",
		base, base, prismaticsim.DefaultAccessToken, base, prismaticsim.DefaultRefreshToken, base, sim.DemoInstanceID())
	switch {
	case change.Field != "" && change.Type == "":
		fmt.Fprintf(stdout, "  schema:    schema.graphql without %s\n", change.Field)
	case change.Field != "":
		fmt.Fprintf(stdout, "  schema:    schema.graphql with %s of type %s\n", change.Field, change.Type)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newSimServer(sim *prismaticsim.Sim) *http.Server {
	return &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
}
