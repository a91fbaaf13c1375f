package cache

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/prismcache/prismcache/internal/redistest"
)

func rtIDs(es []Entry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.Doc.ID
	}
	return ids
}

func TestLookupsSkipStaleIndexRows(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newWriter(b.Client, b.Prefix)
		k := s.Keys()
		rtCreate(t, s, "inst-a", "acme-001", "Salesforce", "15m")
		rtCreate(t, s, "inst-b", "acme-001", "Slack", "1h")
		rtCreate(t, s, "inst-c", "globex", "Salesforce", "5m")
		// Rows a crash or a move can leave behind: an instance that belongs
		// to another customer now, one in another integration, and one
		// whose entry is gone (or is a hash without a document).
		for key, ids := range map[string][]string{
			k.Customer("acme-001"):                          {"inst-c", "inst-gone", "inst-nodoc"},
			k.CustomerIntegration("acme-001", "Salesforce"): {"inst-b", "inst-c", "inst-gone"},
		} {
			if err := b.Client.SAdd(ctx, key, ids).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Client.HSet(ctx, k.Instance("inst-nodoc"), FieldRev, 4).Err(); err != nil {
			t.Fatal(err)
		}

		r := rtReader(t, b, b.Client, ReaderOptions{})
		type lookups interface {
			Get(ctx context.Context, id string) (Entry, error)
			ByCustomer(ctx context.Context, externalID string) ([]Entry, error)
			Find(ctx context.Context, externalID, integrationName string) ([]Entry, error)
		}
		for _, tc := range []struct {
			name string
			l    lookups
		}{{"direct", Direct{Client: b.Client, Keys: s.Keys()}}, {"reader", r}, {"reader from its tier", r}} {
			t.Run(tc.name, func(t *testing.T) {
				hits := r.Stats().Hits
				got, err := tc.l.ByCustomer(ctx, "acme-001")
				if err != nil || !slices.Equal(rtIDs(got), []string{"inst-a", "inst-b"}) {
					t.Fatalf("ByCustomer(acme-001) = %v, %v; want [inst-a inst-b]", rtIDs(got), err)
				}
				got, err = tc.l.Find(ctx, "acme-001", "Salesforce")
				if err != nil || !slices.Equal(rtIDs(got), []string{"inst-a"}) {
					t.Fatalf("Find(acme-001, Salesforce) = %v, %v; want [inst-a]", rtIDs(got), err)
				}
				got, err = tc.l.ByCustomer(ctx, "nobody")
				if err != nil || len(got) != 0 {
					t.Fatalf("ByCustomer(nobody) = %v, %v; want none", rtIDs(got), err)
				}
				for _, id := range []string{"inst-gone", "inst-nodoc"} {
					if _, err := tc.l.Get(ctx, id); !errors.Is(err, ErrNotFound) {
						t.Fatalf("Get(%s): %v, want ErrNotFound", id, err)
					}
				}
				if e, err := tc.l.Get(ctx, "inst-c"); err != nil || e.Doc.Customer.ExternalID != "globex" {
					t.Fatalf("Get(inst-c) = %+v, %v", e, err)
				}
				if tc.name == "reader from its tier" && r.Stats().Hits == hits {
					t.Error("the second round of lookups had no tier hits")
				}
			})
		}
	})
}
