package gqlserver

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// dateTimeFormat renders DateTime as Prismatic does:
// 2022-02-28T21:04:42.282103+00:00.
const dateTimeFormat = "2006-01-02T15:04:05.000000-07:00"

// MarshalDateTime writes a DateTime in UTC with microseconds and a numeric
// offset, as Prismatic's API does.
func MarshalDateTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(t.UTC().Format(dateTimeFormat)))
	})
}

// UnmarshalDateTime reads a DateTime argument (RFC 3339).
func UnmarshalDateTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("DateTime must be a string, got %T", v)
	}
	return time.Parse(time.RFC3339Nano, s)
}
