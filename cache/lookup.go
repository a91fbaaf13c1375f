package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned, wrapped, for an instance that has no entry in the
// cache: never cached, deleted, or a hash without a doc field. Test for it
// with errors.Is.
var ErrNotFound = errors.New("no such instance cached")

// Direct reads the contract straight from Redis, with no in-process tier
// and no subscription: one round trip per call, for tools and one-off
// reads. Apps that read often want a Reader. Fill both fields; a Direct is
// a value and safe for concurrent use.
type Direct struct {
	Client redis.UniversalClient
	Keys   Keys
}

// Get reads the entry of instance id. It returns an error wrapping
// ErrNotFound when the instance has no entry (a hash without a doc field
// counts as none).
func (d Direct) Get(ctx context.Context, id string) (Entry, error) {
	h, err := d.Client.HGetAll(ctx, d.Keys.Instance(id)).Result()
	if err != nil {
		return Entry{}, fmt.Errorf("get %s: %w", id, err)
	}
	return decodeEntry(id, h)
}

// ByCustomer reads the entries of every cached instance of the customer with
// this external id, ordered by instance id. Index rows whose entry is missing
// or belongs to another customer are skipped (see docs/redis.md: index rows
// are written after entries).
func (d Direct) ByCustomer(ctx context.Context, externalID string) ([]Entry, error) {
	return lookupIndex(ctx, d.Client, d.Keys, customerQuery(externalID))
}

// Find is ByCustomer restricted to the instances of one integration (by
// integration name).
func (d Direct) Find(ctx context.Context, externalID, integrationName string) ([]Entry, error) {
	return lookupIndex(ctx, d.Client, d.Keys, integrationQuery(externalID, integrationName))
}

// indexQuery is one lookup through the customer index: the set to read and
// the check every entry found through it must pass.
type indexQuery struct {
	externalID    string
	integration   string
	byIntegration bool
}

func customerQuery(externalID string) indexQuery {
	return indexQuery{externalID: externalID}
}

func integrationQuery(externalID, integration string) indexQuery {
	return indexQuery{externalID: externalID, integration: integration, byIntegration: true}
}

func (q indexQuery) key(k Keys) string {
	if q.byIntegration {
		return k.CustomerIntegration(q.externalID, q.integration)
	}
	return k.Customer(q.externalID)
}

// matches reports whether an entry found through the index really belongs to
// the query: a row can outlive a move to another customer or integration.
func (q indexQuery) matches(e Entry) bool {
	if e.Doc == nil || e.Doc.Customer.ExternalID != q.externalID {
		return false
	}
	return !q.byIntegration || e.Doc.Integration.Name == q.integration
}

func (q indexQuery) String() string {
	if q.byIntegration {
		return fmt.Sprintf("customer %s integration %s", q.externalID, q.integration)
	}
	return "customer " + q.externalID
}

// lookupIndex reads an index set, then every entry it names in one
// pipeline, and keeps those that pass the query's check.
func lookupIndex(ctx context.Context, rdb redis.UniversalClient, keys Keys, q indexQuery) ([]Entry, error) {
	ids, err := rdb.SMembers(ctx, q.key(keys)).Result()
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", q, err)
	}
	slices.Sort(ids)
	hs, err := readHashes(ctx, rdb, keys, ids)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", q, err)
	}
	out := make([]Entry, 0, len(ids))
	for i, id := range ids {
		e, err := decodeEntry(id, hs[i])
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("lookup %s: %w", q, err)
		}
		if q.matches(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// readHashes reads the entry hashes of ids in one pipeline; an id with no
// hash gets an empty map.
func readHashes(ctx context.Context, rdb redis.UniversalClient, keys Keys, ids []string) ([]map[string]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, keys.Instance(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	hs := make([]map[string]string, len(ids))
	for i, c := range cmds {
		hs[i] = c.Val()
	}
	return hs, nil
}

// decodeEntry parses the hash of instance id. A hash without a document is
// ErrNotFound: the daemon never writes one, so it is a leftover, not an
// instance.
func decodeEntry(id string, h map[string]string) (Entry, error) {
	if h[FieldDoc] == "" {
		return Entry{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	e, err := ParseEntry(h)
	if err != nil {
		return Entry{}, fmt.Errorf("instance %s: %w", id, err)
	}
	return e, nil
}
