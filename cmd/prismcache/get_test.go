package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/prismcache/prismcache/cache"
)

const (
	cachedID  = "SW5zdGFuY2U6MTExMTExMTEtMTExMS00MTExLTgxMTEtMTExMTExMTExMTEx"
	deletedID = "SW5zdGFuY2U6MjIyMjIyMjItMjIyMi00MjIyLTgyMjItMjIyMjIyMjIyMjIy"
	missingID = "SW5zdGFuY2U6MzMzMzMzMzMtMzMzMy00MzMzLTgzMzMtMzMzMzMzMzMzMzMz"
)

// cacheWithEntries is a Redis holding one cached instance and one deleted
// (tombstoned) one, written as the contract in docs/redis.md lays them out.
func cacheWithEntries(t *testing.T) string {
	t.Helper()
	mr := miniredis.RunT(t)
	keys := cache.NewKeys(cache.DefaultPrefix)
	doc, err := json.Marshal(cache.Doc{ID: cachedID, Name: "Acme - Sync", Enabled: true, DeployedVersion: 3})
	if err != nil {
		t.Fatal(err)
	}
	mr.HSet(keys.Instance(cachedID), cache.FieldDoc, string(doc), cache.FieldStale, "0", cache.FieldEnabled, "1",
		cache.FieldDeployedVersion, "3", cache.FieldRev, "1", cache.FieldFetchedAt, time.Now().UTC().Format(time.RFC3339Nano))
	if err := mr.Set(keys.Tombstone(deletedID), "1"); err != nil {
		t.Fatal(err)
	}
	return "redis://" + mr.Addr() + "/0"
}

// deadRedisURL is the URL of a port nothing listens on.
func deadRedisURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "redis://" + addr + "/0"
}

// TestGetExitCodes: found, not cached, deleted, Redis down and a usage
// error each exit with their documented code, and an error is one line.
func TestGetExitCodes(t *testing.T) {
	url := cacheWithEntries(t)
	dead := deadRedisURL(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		say  string
	}{
		{"found", []string{"--redis-url", url, cachedID}, exitOK, ""},
		{"not cached", []string{"--redis-url", url, missingID}, exitNotCached, "is not cached"},
		{"deleted", []string{"--redis-url", url, deletedID}, exitNotCached, "it was deleted"},
		{"redis down", []string{"--redis-url", dead, cachedID}, exitRedisUnavailable, "cannot read Redis at " + dead},
		{"bad url", []string{"--redis-url", "http://x", cachedID}, exitUsage, "scheme"},
		{"no id", []string{"--redis-url", url}, exitUsage, "Usage:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			rc := run(context.Background(), append([]string{"get"}, tc.args...), &out, &errOut)
			if rc != tc.code {
				t.Fatalf("exit %d, want %d: %s", rc, tc.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.say) {
				t.Errorf("stderr %q does not say %q", errOut.String(), tc.say)
			}
			if tc.code == exitOK {
				var v map[string]any
				if err := json.Unmarshal(out.Bytes(), &v); err != nil || v["id"] != cachedID {
					t.Errorf("printed %s (%v)", out.String(), err)
				}
			} else if tc.code != exitUsage && strings.Count(errOut.String(), "\n") != 1 {
				t.Errorf("the error is not one line:\n%s", errOut.String())
			}
		})
	}
}

// TestGetRedisDownIsOneLine runs the built binary against a dead Redis:
// its whole stderr is one line, with none of go-redis's own log lines.
func TestGetRedisDownIsOneLine(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "get", "--redis-url", deadRedisURL(t), cachedID)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitRedisUnavailable {
		t.Fatalf("exit: %v, want code %d; stderr:\n%s", err, exitRedisUnavailable, stderr.String())
	}
	lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "prismcache get: cannot read Redis at ") || stdout.Len() > 0 {
		t.Fatalf("stdout %q, stderr:\n%s", stdout.String(), stderr.String())
	}
}
