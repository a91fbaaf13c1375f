package main

import (
	"context"
	"errors"
	"flag"
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

// loadConfig reads the layered configuration for serve and check-config;
// extra, when set, adds the command's own flags.
func loadConfig(name, synopsis, example string, args []string, stderr io.Writer, extra ...func(*flag.FlagSet)) (config.Config, error) {
	fs := newFlagSet(name, synopsis, example, stderr)
	for _, add := range extra {
		add(fs)
	}
	cfg, err := config.Load(fs, args, os.Getenv)
	switch {
	case err == nil:
		return cfg, nil
	case errors.Is(err, flag.ErrHelp):
		return cfg, err
	case errors.Is(err, config.ErrFlags):
		return cfg, errUsage
	}
	return cfg, fmt.Errorf("invalid configuration:\n%w", err)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("serve [flags]",
		"Runs the daemon: receives Prismatic's webhooks and keeps each instance's deployed config in Redis.\nSettings come from the defaults, then --config's file, then the environment, then flags.",
		"PRISMCACHE_WEBHOOK_SECRET=… PRISMATIC_REFRESH_TOKEN=… prismcache serve --redis-url redis://10.0.0.5:6379/0",
		args, stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errUsage) && jsonLogs(stderr, cfg.LogFormat) {
		// A collector reading JSON gets the refusal as JSON too.
		newLogger(stderr, cfg.LogLevel, cfg.LogFormat).Error("cannot start", "err", err)
		return reported(err)
	}
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	// From here on every line goes through log, go-redis's own included,
	// so that in JSON mode each one is JSON.
	app.RouteRedisLogs(log)
	if cfg.DebugListen != "" {
		_, stop, err := startDebug(cfg.DebugListen, log)
		if err != nil {
			log.Error("cannot start", "err", fmt.Errorf("debug-listen: %w", err))
			return reported(err)
		}
		defer stop()
	}
	a := &app.App{Config: cfg, Log: log, Version: buildVersion()}
	if err := a.Start(ctx); err != nil {
		log.Error("cannot start", "err", err)
		return reported(err)
	}
	<-ctx.Done()
	log.Info("shutting down: no new webhooks; fetches in flight may finish", "deadline", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := a.Close(sctx); err != nil {
		log.Error("stopped with errors", "err", err)
		return reported(err)
	}
	log.Info("stopped")
	return nil
}

func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var online bool
	cfg, err := loadConfig("check-config [flags]",
		"Prints the configuration prismcache serve would run with — defaults, file, environment and flags\nlayered — with secrets masked and where each value came from, then checks it. Exits 1 when invalid.\n"+
			"With --online it also signs in to the configured Prismatic API, runs one cheap query, reads the\n"+
			"API's schema (introspection) and checks every operation prismcache sends against it, naming each\n"+
			"field whose type differs from the schema.graphql this binary was built with; exits 1 if any does.",
		"prismcache check-config --config /etc/prismcache/prismcache.conf --online",
		args, stderr, func(fs *flag.FlagSet) {
			fs.BoolVar(&online, "online", false, "also check the Prismatic API: the token, one query, and its schema against every operation prismcache sends")
		})
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
		return err
	}
	fmt.Fprint(stdout, cfg.Effective())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "# configuration is valid")
	if online {
		return checkOnline(ctx, cfg, stdout)
	}
	return nil
}
