package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/redistest"
)

// rtDoc is a document for instance id of customer ext and integration,
// with one STRING variable "syncFrequency" holding value.
func rtDoc(id, ext, integration, value string) *Doc {
	deployed := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	return &Doc{
		ID: id, Name: ext + " - " + integration, Enabled: true, DeployedVersion: 3, LastDeployedAt: &deployed,
		Customer:    Customer{ID: "Q3VzdG9tZXI6MQ==", ExternalID: ext, Name: ext},
		Integration: Integration{ID: "SW50ZWdyYXRpb246MQ==", Name: integration, VersionNumber: 4},
		Config:      map[string]ConfigValue{"syncFrequency": {Value: &value, Type: "STRING"}},
	}
}

// rtPut writes the entry of id through the store, as the daemon does, from
// whatever is there now; mutate edits the entry to write. It returns the new
// rev.
func rtPut(t testing.TB, s *writer, id string, kind Change, mutate func(e *Entry)) int64 {
	t.Helper()
	ctx := context.Background()
	st, err := s.Load(ctx, id)
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	next := st.Entry
	if d := next.Doc; d != nil { // a copy: the write must not edit the entry it replaces
		c := *d
		c.Config = maps.Clone(d.Config)
		next.Doc = &c
	}
	mutate(&next)
	rev, err := s.Apply(ctx, id, st.Entry, writeOp{Kind: kind, Entry: next})
	if err != nil {
		t.Fatalf("apply %s: %v", id, err)
	}
	return rev
}

// rtCreate writes a fresh entry for id.
func rtCreate(t testing.TB, s *writer, id, ext, integration, value string) int64 {
	t.Helper()
	return rtPut(t, s, id, ChangeRefreshed, func(e *Entry) {
		*e = Entry{Doc: rtDoc(id, ext, integration, value), Enabled: true, DeployedVersion: 3, FetchedAt: time.Now().UTC()}
	})
}

// rtSetValue writes a new syncFrequency value for id through the store.
func rtSetValue(t testing.TB, s *writer, id, value string) int64 {
	t.Helper()
	return rtPut(t, s, id, ChangeRefreshed, func(e *Entry) {
		e.Doc.Config["syncFrequency"] = ConfigValue{Value: &value, Type: "STRING"}
	})
}

func rtDelete(t testing.TB, s *writer, id string) {
	t.Helper()
	ctx := context.Background()
	st, err := s.Load(ctx, id)
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	if _, err := s.Apply(ctx, id, st.Entry, writeOp{Kind: ChangeDeleted, Delete: true}); err != nil {
		t.Fatalf("delete %s: %v", id, err)
	}
}

// rtValue is the syncFrequency value of e, or "" when it has none.
func rtValue(e Entry) string {
	v, _ := e.String("syncFrequency")
	return v
}

// rtWaitFor polls cond until it holds, failing the test after 10s. Tests
// wait on conditions, never on fixed sleeps.
func rtWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rtNet is a switch between a client and its Redis: while down, dials fail
// and every open connection is closed. It breaks one client's link only, so
// it works the same on miniredis and on a Redis other tests share.
type rtNet struct {
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func (n *rtNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return nil, errors.New("test network is down")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n.conns = append(n.conns, c)
	return c, nil
}

func (n *rtNet) setDown(down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down = down
	if down {
		for _, c := range n.conns {
			_ = c.Close()
		}
		n.conns = nil
	}
}

// rtClient is a client of its own for a Reader under test, with a unique
// CLIENT SETNAME name (to find its connections in CLIENT LIST), no retries,
// and its dials going through sw when sw is not nil.
func rtClient(t testing.TB, b redistest.Backend, sw *rtNet) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(b.URL)
	if err != nil {
		t.Fatalf("parse %s: %v", b.URL, err)
	}
	buf := make([]byte, 4)
	_, _ = rand.Read(buf)
	opts.ClientName = "prismcache-reader-test-" + hex.EncodeToString(buf)
	opts.MaxRetries = -1
	opts.DialTimeout = time.Second
	if sw != nil {
		opts.Dialer = sw.dial
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c, opts.ClientName
}

// rtReader starts a Reader for the backend's prefix over rdb and waits until
// its subscription is live.
func rtReader(t testing.TB, b redistest.Backend, rdb redis.UniversalClient, opts ReaderOptions) *Reader {
	t.Helper()
	opts.Prefix = b.Prefix
	r, err := NewReader(rdb, opts)
	if err != nil {
		t.Fatalf("new reader: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	rtWaitFor(t, "the reader's subscription", func() bool { return r.Stats().Subscribed })
	return r
}

func rtMustGet(t testing.TB, r *Reader, id string) Entry {
	t.Helper()
	e, err := r.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return e
}

// rtDocJSON is the doc field of an entry holding value, for writes that go
// around the store (and so publish nothing).
func rtDocJSON(t testing.TB, id, value string) string {
	t.Helper()
	b, err := json.Marshal(rtDoc(id, "acme-001", "Salesforce", value))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
