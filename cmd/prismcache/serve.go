package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prismcache/prismcache/internal/app"
	"github.com/prismcache/prismcache/internal/config"
)

// shutdownTimeout bounds a graceful shutdown: fetches in flight get this
// long to finish before their ids are handed back to the work set.
const shutdownTimeout = 30 * time.Second

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := newFlagSet("serve [flags]",
		"Runs the daemon: receives Prismatic's webhooks and keeps each instance's deployed config in Redis.\nEvery flag has an environment twin, shown in its description; flags win.",
		"PRISMCACHE_WEBHOOK_SECRET=… PRISMATIC_REFRESH_TOKEN=… prismcache serve --redis-url redis://10.0.0.5:6379/0",
		stderr)
	cfg.RegisterFlags(fs)
	if err := cfg.LoadEnv(os.Getenv); err != nil {
		return err
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	a := &app.App{Config: cfg, Log: newLogger(stderr, cfg.LogLevel)}
	if err := a.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	a.Log.Info("shutting down", "deadline", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return a.Close(sctx)
}
