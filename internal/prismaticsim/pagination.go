package prismaticsim

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/prismcache/prismcache/internal/prismaticsim/gqlexec"
)

// page is one page of any *Connection type.
type page struct {
	nodes []any
	info  pageInfo
	total int
}

type pageInfo struct {
	startCursor, endCursor *string
	hasNext, hasPrev       bool
}

// cursor is Relay's offset cursor, as Prismatic's: base64 of
// "arrayconnection:<offset>".
func cursor(offset int) string {
	return base64.StdEncoding.EncodeToString([]byte("arrayconnection:" + strconv.Itoa(offset)))
}

func cursorOffset(c string) (int, bool) {
	raw, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	n, ok := strings.CutPrefix(string(raw), "arrayconnection:")
	if !ok {
		return 0, false
	}
	off, err := strconv.Atoi(n)
	if err != nil || off < 0 {
		return 0, false
	}
	return off, true
}

// paginate cuts one page out of items with the arguments first, after,
// last, before and offset, as graphql-relay's connectionFromArray does with
// graphene-django's limits: with neither first nor last, first is
// MaxPageSize; more than MaxPageSize is an error; offset counts from after;
// a malformed cursor is ignored.
func paginate[T any](items []T, args gqlexec.Args, field string) (*page, error) {
	first, hasFirst := args.Int("first")
	last, hasLast := args.Int("last")
	for _, a := range []struct {
		name string
		n    int
		has  bool
	}{{"first", first, hasFirst}, {"last", last, hasLast}} {
		if !a.has {
			continue
		}
		if a.n < 0 {
			return nil, fmt.Errorf("argument %s must be a non-negative integer", a.name)
		}
		if a.n > MaxPageSize {
			return nil, fmt.Errorf("requesting %d records on the `%s` connection exceeds the `%s` limit of %d records", a.n, field, a.name, MaxPageSize)
		}
	}
	if !hasFirst && !hasLast {
		first, hasFirst = MaxPageSize, true
	}
	total := len(items)
	after := -1
	if c, ok := args.String("after"); ok {
		if off, ok := cursorOffset(c); ok {
			after = off
		}
	}
	before := total
	if c, ok := args.String("before"); ok {
		if off, ok := cursorOffset(c); ok {
			before = off
		}
	}
	if off, ok := args.Int("offset"); ok && off > 0 {
		after += off
	}
	lower := max(after+1, 0)
	upper := min(before, total)
	start, end := lower, upper
	if hasFirst {
		end = min(end, start+first)
	}
	if hasLast {
		start = max(start, end-last)
	}
	if start > end {
		start = end
	}
	p := &page{total: total, nodes: make([]any, 0, end-start)}
	for i := start; i < end; i++ {
		p.nodes = append(p.nodes, items[i])
	}
	if end > start {
		p.info.startCursor, p.info.endCursor = ptr(cursor(start)), ptr(cursor(end-1))
	}
	p.info.hasPrev = hasLast && start > lower
	p.info.hasNext = hasFirst && end < upper
	return p, nil
}
