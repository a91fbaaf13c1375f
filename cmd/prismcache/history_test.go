package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/store"
)

// TestHistoryCommand: two deploys of an instance, the second changing one
// value and a connection's status, print as two revisions, newest first,
// readably and as JSON; a connection shows its status only.
func TestHistoryCommand(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	s := store.New(rdb, store.Options{HistoryDepth: store.DefaultHistoryDepth})
	doc := func(version int, freq, status string) *cache.Doc {
		return &cache.Doc{ID: cachedID, DeployedVersion: version, Config: map[string]cache.ConfigValue{
			"syncFrequency": {Value: &freq, Type: "STRING"},
			"salesforce":    {Type: cache.TypeConnection, Status: status},
		}}
	}
	prev := cache.Entry{}
	for _, d := range []*cache.Doc{doc(1, "15m", "ACTIVE"), doc(2, "5m", "ERROR")} {
		e := cache.Entry{Doc: d, DeployedVersion: d.DeployedVersion}
		rev, err := s.Apply(ctx, cachedID, prev, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		if err != nil {
			t.Fatal(err)
		}
		e.Rev = rev
		prev = e
	}
	url := "redis://" + mr.Addr() + "/0"

	var out, errOut bytes.Buffer
	if rc := run(ctx, []string{"history", "--redis-url", url, cachedID}, &out, &errOut); rc != 0 {
		t.Fatalf("history exited %d: %s", rc, errOut.String())
	}
	text := out.String()
	first, second := strings.Index(text, "version 2"), strings.Index(text, "version 1")
	if first < 0 || second < first {
		t.Fatalf("revisions not newest first:\n%s", text)
	}
	for _, want := range []string{"syncFrequency", "15m → 5m", "salesforce", "status", "ACTIVE → ERROR"} {
		if !strings.Contains(text[:second], want) {
			t.Errorf("the newest revision does not show %q:\n%s", want, text)
		}
	}

	out.Reset()
	if rc := run(ctx, []string{"history", "--json", "--redis-url", url, cachedID}, &out, &errOut); rc != 0 {
		t.Fatalf("history --json exited %d: %s", rc, errOut.String())
	}
	var revs []cache.Revision
	if err := json.Unmarshal(out.Bytes(), &revs); err != nil || len(revs) != 2 || len(revs[0].Changes) != 2 {
		t.Fatalf("history --json: %v, %d revisions:\n%s", err, len(revs), out.String())
	}

	out.Reset()
	if rc := run(ctx, []string{"history", "--redis-url", url, missingID}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), "no revisions") {
		t.Fatalf("history of an instance without any: exit %d, %q", rc, out.String())
	}
}
