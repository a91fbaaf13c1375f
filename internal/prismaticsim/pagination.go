package prismaticsim

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/prismcache/prismcache/internal/prismaticsim/gqlserver"
)

// pageArgs are a connection field's pagination arguments; nil is absent.
// Fields without last, before or offset in the schema leave them nil.
type pageArgs struct {
	first, last, offset *int
	after, before       *string
}

// page is one page of items.
type page[T any] struct {
	nodes []T
	info  *gqlserver.PageInfo
	total int
}

// cursor is Relay's offset cursor, as Prismatic's: base64 of
// "arrayconnection:<offset>".
func cursor(offset int) string {
	return base64.StdEncoding.EncodeToString([]byte("arrayconnection:" + strconv.Itoa(offset)))
}

// cursorOffset reads a cursor; a nil or malformed one is absent.
func cursorOffset(c *string) (int, bool) {
	if c == nil {
		return 0, false
	}
	raw, err := base64.StdEncoding.DecodeString(*c)
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
func paginate[T any](items []T, a pageArgs, field string) (page[T], error) {
	for _, arg := range []struct {
		name string
		n    *int
	}{{"first", a.first}, {"last", a.last}} {
		if arg.n == nil {
			continue
		}
		if *arg.n < 0 {
			return page[T]{}, fmt.Errorf("argument %s must be a non-negative integer", arg.name)
		}
		if *arg.n > MaxPageSize {
			return page[T]{}, fmt.Errorf("requesting %d records on the `%s` connection exceeds the `%s` limit of %d records", *arg.n, field, arg.name, MaxPageSize)
		}
	}
	if a.first == nil && a.last == nil {
		a.first = ptr(MaxPageSize)
	}
	total := len(items)
	after := -1
	if off, ok := cursorOffset(a.after); ok {
		after = off
	}
	before := total
	if off, ok := cursorOffset(a.before); ok {
		before = off
	}
	if a.offset != nil && *a.offset > 0 {
		after += *a.offset
	}
	lower := max(after+1, 0)
	upper := min(before, total)
	start, end := lower, upper
	if a.first != nil {
		end = min(end, start+*a.first)
	}
	if a.last != nil {
		start = max(start, end-*a.last)
	}
	if start > end {
		start = end
	}
	p := page[T]{nodes: items[start:end:end], total: total, info: &gqlserver.PageInfo{
		HasPreviousPage: a.last != nil && start > lower,
		HasNextPage:     a.first != nil && end < upper,
	}}
	if end > start {
		p.info.StartCursor, p.info.EndCursor = ptr(cursor(start)), ptr(cursor(end-1))
	}
	return p, nil
}
