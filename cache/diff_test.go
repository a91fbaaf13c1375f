package cache_test

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
)

func str(s string) *string { return &s }

func TestChangedKeys(t *testing.T) {
	at := func(h int) *time.Time { v := time.Date(2026, 11, 20, h, 0, 0, 0, time.UTC); return &v }
	doc := func(cfg map[string]cache.ConfigValue) *cache.Doc { return &cache.Doc{ID: "inst1", Config: cfg} }
	base := map[string]cache.ConfigValue{
		"syncFrequency": {Value: str("15m"), Type: "STRING"},
		"batchSize":     {Value: str("200"), Type: "NUMBER"},
		"empty":         {Value: nil, Type: "STRING"},
		"sf":            {Type: "CONNECTION", Status: "ACTIVE", RefreshAt: at(11)},
		"apiKey":        {Type: "CREDENTIAL"},
	}
	with := func(edit func(m map[string]cache.ConfigValue)) *cache.Doc {
		m := maps.Clone(base)
		edit(m)
		return doc(m)
	}
	for _, tc := range []struct {
		name       string
		prev, next *cache.Doc
		want       []string
	}{
		{"identical", doc(base), doc(base), []string{}},
		{"both nil", nil, nil, []string{}},
		{"nil config", doc(nil), doc(map[string]cache.ConfigValue{}), []string{}},
		{"one value", doc(base), with(func(m map[string]cache.ConfigValue) {
			m["syncFrequency"] = cache.ConfigValue{Value: str("5m"), Type: "STRING"}
		}), []string{"syncFrequency"}},
		{"null and empty differ", doc(base), with(func(m map[string]cache.ConfigValue) {
			m["empty"] = cache.ConfigValue{Value: str(""), Type: "STRING"}
		}), []string{"empty"}},
		{"connection status", doc(base), with(func(m map[string]cache.ConfigValue) {
			m["sf"] = cache.ConfigValue{Type: "CONNECTION", Status: "FAILED", RefreshAt: at(11)}
		}), []string{"sf"}},
		{"connection refresh times and ids are not changes", doc(base), with(func(m map[string]cache.ConfigValue) {
			m["sf"] = cache.ConfigValue{ID: "other", Type: "CONNECTION", Status: "ACTIVE", RefreshAt: at(12), LastSuccessfulRefreshAt: at(10)}
		}), []string{}},
		{"a value on a connection is never compared", doc(base), with(func(m map[string]cache.ConfigValue) {
			m["sf"] = cache.ConfigValue{Type: "CONNECTION", Status: "ACTIVE", Value: str("secret"), RefreshAt: at(11)}
		}), []string{}},
		{"added and removed", doc(base), with(func(m map[string]cache.ConfigValue) {
			delete(m, "batchSize")
			m["region"] = cache.ConfigValue{Value: str("eu"), Type: "PICKLIST"}
		}), []string{"batchSize", "region"}},
		{"a connection turned into a value", doc(base), with(func(m map[string]cache.ConfigValue) {
			m["sf"] = cache.ConfigValue{Value: str("ACTIVE"), Type: "STRING"}
		}), []string{"sf"}},
		{"from nothing", nil, doc(base), []string{"apiKey", "batchSize", "empty", "sf", "syncFrequency"}},
		{"to nothing", doc(base), nil, []string{"apiKey", "batchSize", "empty", "sf", "syncFrequency"}},
		{"several, sorted", doc(base), with(func(m map[string]cache.ConfigValue) {
			m["syncFrequency"] = cache.ConfigValue{Value: str("1h"), Type: "STRING"}
			m["batchSize"] = cache.ConfigValue{Value: str("50"), Type: "NUMBER"}
			m["sf"] = cache.ConfigValue{Type: "CONNECTION", Status: "ERROR"}
		}), []string{"batchSize", "sf", "syncFrequency"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cache.ChangedKeys(tc.prev, tc.next)
			if got == nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ChangedKeys = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// visible is what the change feed promises about a document: per key, the
// value, or for a connection its status — never a secret.
func visible(d *cache.Doc) map[string]string {
	out := map[string]string{}
	if d == nil {
		return out
	}
	for k, c := range d.Config {
		switch {
		case c.IsConnection():
			out[k] = "connection:" + c.Status
		case c.Value == nil:
			out[k] = "null"
		default:
			out[k] = "value:" + *c.Value
		}
	}
	return out
}

// randomDoc is a document over a small set of keys, types and values, so
// that random pairs share keys and values often.
func randomDoc(rng *rand.Rand) *cache.Doc {
	if rng.IntN(20) == 0 {
		return nil
	}
	d := &cache.Doc{ID: "inst1", Config: map[string]cache.ConfigValue{}}
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if rng.IntN(4) == 0 {
			continue
		}
		d.Config[k] = randomValue(rng)
	}
	return d
}

func randomValue(rng *rand.Rand) cache.ConfigValue {
	at := time.Date(2026, 11, 20, rng.IntN(3), 0, 0, 0, time.UTC)
	switch rng.IntN(4) {
	case 0:
		c := cache.ConfigValue{Type: "CONNECTION", Status: []string{"ACTIVE", "ERROR", ""}[rng.IntN(3)], RefreshAt: &at}
		if rng.IntN(4) == 0 {
			c.Value = str("a secret the comparison must not look at")
		}
		return c
	case 1:
		return cache.ConfigValue{Type: "CREDENTIAL"}
	}
	c := cache.ConfigValue{Type: []string{"STRING", "NUMBER"}[rng.IntN(2)]}
	if v := rng.IntN(4); v > 0 {
		c.Value = str([]string{"", "1", "x"}[v-1])
	}
	return c
}

// mutate returns a copy of d with a few random edits, so that pairs also
// come close to each other.
func mutate(rng *rand.Rand, d *cache.Doc) *cache.Doc {
	n := &cache.Doc{ID: "inst1", Config: map[string]cache.ConfigValue{}}
	if d != nil {
		n.Config = maps.Clone(d.Config)
	}
	for range rng.IntN(3) {
		k := string(rune('a' + rng.IntN(6)))
		switch rng.IntN(3) {
		case 0:
			delete(n.Config, k)
		case 1:
			n.Config[k] = randomValue(rng)
		default:
			if c, ok := n.Config[k]; ok { // a change the feed does not promise
				at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
				c.RefreshAt, c.ID = &at, "moved"
				n.Config[k] = c
			}
		}
	}
	return n
}

// TestChangedKeysProperty: for random pairs of documents, applying the
// reported keys (copying each from the new document, or removing it) to the
// old one gives the new one, as far as the feed promises (values, and
// connection status); and every key reported does differ.
func TestChangedKeysProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 18))
	for i := range 5000 {
		prev := randomDoc(rng)
		next := randomDoc(rng)
		if i%2 == 0 {
			next = mutate(rng, prev)
		}
		keys := cache.ChangedKeys(prev, next)
		if keys == nil || !slices.IsSorted(keys) {
			t.Fatalf("ChangedKeys = %#v: want a sorted, non-nil slice", keys)
		}
		applied := map[string]cache.ConfigValue{}
		if prev != nil {
			applied = maps.Clone(prev.Config)
		}
		before, after := visible(prev), visible(next)
		var nextConfig map[string]cache.ConfigValue
		if next != nil {
			nextConfig = next.Config
		}
		for _, k := range keys {
			b, inPrev := before[k]
			a, inNext := after[k]
			if inPrev == inNext && a == b {
				t.Fatalf("key %q reported but unchanged (%q)\nprev %v\nnext %v", k, b, before, after)
			}
			if c, ok := nextConfig[k]; ok {
				applied[k] = c
			} else {
				delete(applied, k)
			}
		}
		if got := visible(&cache.Doc{Config: applied}); !reflect.DeepEqual(got, after) {
			t.Fatalf("applying %v to\n%v\ngives\n%v\nwant\n%v", keys, before, got, after)
		}
	}
}

func TestMessageChangedKeysJSON(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		want string
	}{
		{nil, `{"id":"i","change":"refreshed","deployed_version":7,"rev":12}`},
		{[]string{}, `{"id":"i","change":"refreshed","deployed_version":7,"rev":12,"changed_keys":[]}`},
		{[]string{"a", "b"}, `{"id":"i","change":"refreshed","deployed_version":7,"rev":12,"changed_keys":["a","b"]}`},
	} {
		m := cache.Message{ID: "i", Change: cache.ChangeRefreshed, DeployedVersion: 7, Rev: 12, ChangedKeys: tc.keys}
		b, err := json.Marshal(m)
		if err != nil || string(b) != tc.want {
			t.Fatalf("json.Marshal(%#v) = %s, %v; want %s", m, b, err, tc.want)
		}
		if p, err := (&m).MarshalJSON(); err != nil || string(p) != tc.want {
			t.Fatalf("(*Message).MarshalJSON = %s, %v; want %s", p, err, tc.want)
		}
		var back cache.Message
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if (back.ChangedKeys == nil) != (tc.keys == nil) || !slices.Equal(back.ChangedKeys, tc.keys) {
			t.Fatalf("decoding %s gave ChangedKeys %#v, want %#v", b, back.ChangedKeys, tc.keys)
		}
	}
}

// BenchmarkChangedKeys: the daemon runs ChangedKeys on every refresh; a
// document of 30 variables, one of which changed.
func BenchmarkChangedKeys(b *testing.B) {
	prev := &cache.Doc{Config: map[string]cache.ConfigValue{}}
	for i := range 30 {
		k := "key" + string(rune('A'+i))
		if i%5 == 0 {
			prev.Config[k] = cache.ConfigValue{Type: "CONNECTION", Status: "ACTIVE"}
		} else {
			prev.Config[k] = cache.ConfigValue{Type: "STRING", Value: str("value of " + k)}
		}
	}
	next := &cache.Doc{Config: maps.Clone(prev.Config)}
	next.Config["keyB"] = cache.ConfigValue{Type: "STRING", Value: str("changed")}
	b.ReportAllocs()
	for b.Loop() {
		if len(cache.ChangedKeys(prev, next)) != 1 {
			b.Fatal("want one key")
		}
	}
}
