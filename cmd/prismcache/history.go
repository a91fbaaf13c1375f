package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prismcache/prismcache/cache"
)

const historySynopsis = `Prints the latest revisions of one instance, newest first, read straight
from Redis: each deploy (or connection status change) the daemon cached, with
every key it changed, from its old value to its new one. Connections show their
status, never a value. The daemon keeps --history-depth revisions (10).

Exit codes as prismcache get: 0 printed (none kept is not an error); 2 usage
error; 3 Redis did not answer.`

func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var rd instanceReader
	asJSON := false
	fs := newFlagSet("history [flags] <instance-id>", historySynopsis,
		"prismcache history --redis-url redis://127.0.0.1:6379 SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0",
		stderr)
	rd.flags(fs)
	fs.BoolVar(&asJSON, "json", false, "print the revisions as JSON")
	id, s, closeStore, err := rd.open(fs, args)
	if err != nil {
		return err
	}
	defer closeStore()
	cfg := rd.cfg
	revs, err := s.History(ctx, id)
	if err != nil {
		return &exitCodeError{code: exitRedisUnavailable, err: fmt.Errorf("cannot read Redis at %s: %w", redactURL(cfg.RedisURL), err)}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(revs)
	}
	printHistory(stdout, id, revs)
	return nil
}

// printHistory writes revisions for a person: one block per revision, one
// line per changed key.
func printHistory(w io.Writer, id string, revs []cache.Revision) {
	if len(revs) == 0 {
		fmt.Fprintf(w, "no revisions kept for %s\n", id)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, r := range revs {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		deployed := "never deployed"
		if r.LastDeployedAt != nil {
			deployed = "deployed " + r.LastDeployedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "version %d\t%s\tcached %s (rev %d)\n", r.DeployedVersion, deployed, r.At.UTC().Format(time.RFC3339), r.Rev)
		if len(r.Changes) == 0 {
			fmt.Fprintf(tw, "  (no config key changed)\n")
		}
		for _, c := range r.Changes {
			what := "value"
			if c.Type == cache.TypeConnection || c.Type == cache.TypeCredential {
				what = "status"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s → %s\n", c.Key, what, shownValue(c.Old), shownValue(c.New))
		}
	}
	_ = tw.Flush()
}

func shownValue(v *string) string {
	switch {
	case v == nil:
		return "(none)"
	case len(*v) > 60:
		return fmt.Sprintf("%q…", (*v)[:57])
	case strings.ContainsAny(*v, " \t\n") || *v == "":
		return fmt.Sprintf("%q", *v)
	}
	return *v
}
