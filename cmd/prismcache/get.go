package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"github.com/prismcache/prismcache/internal/store"
)

// Exit codes of prismcache get, so that scripts can tell the cases apart.
// 0 (found) and 2 (usage) are shared with every command.
const (
	// exitNotCached: the instance has no entry (never cached, or deleted).
	exitNotCached = 1
	// exitRedisUnavailable: Redis did not answer, refused the connection's
	// credentials, or failed the read.
	exitRedisUnavailable = 3
)

const getSynopsis = `Prints the cached entry of one instance as JSON, read straight from Redis.

Exit codes: 0 the entry was printed; 1 the instance is not cached (never, or
deleted); 2 usage error (bad flags, arguments or Redis URL); 3 Redis did not
answer, refused the credentials, or failed the read.`

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var rd instanceReader
	fs := newFlagSet("get [flags] <instance-id>", getSynopsis,
		"prismcache get --redis-url redis://127.0.0.1:6379 SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0",
		stderr)
	rd.flags(fs)
	id, s, closeStore, err := rd.open(fs, args)
	if err != nil {
		return err
	}
	defer closeStore()
	cfg := rd.cfg
	st, err := s.Load(ctx, id)
	if err != nil {
		return &exitCodeError{code: exitRedisUnavailable, err: fmt.Errorf("cannot read Redis at %s: %w", redactURL(cfg.RedisURL), err)}
	}
	if st.Entry.Doc == nil {
		if st.Tombstoned {
			return &exitCodeError{code: exitNotCached, err: fmt.Errorf("instance %s is not cached: it was deleted", id)}
		}
		return &exitCodeError{code: exitNotCached, err: fmt.Errorf("instance %s is not cached (under prefix %q in %s)", id, cfg.RedisPrefix, redactURL(cfg.RedisURL))}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(store.View(st.Entry))
}

// typedString is a flag.Value writing into a string, with the kind of
// value it takes for the help text.
type typedString struct {
	p    *string
	name string
}

func (f typedString) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}
func (f typedString) Set(s string) error { *f.p = s; return nil }
func (f typedString) TypeName() string   { return f.name }

// redactURL hides a password in a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
