package config

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/prismcache/prismcache/internal/server"
)

// Defaults of the intake's limits; the intake documents why.
const (
	DefaultMaxBody           = server.DefaultMaxBody
	DefaultIntakeMaxBytes    = server.DefaultMaxInFlightBytes
	DefaultIntakeMaxRequests = server.DefaultMaxInFlight
)

// Admin token strength: at least minTokenLength characters, of which at
// least minTokenDistinct different ones. A random token of that size (16
// hex digits: 64 bits) passes; "aaaaaaaaaaaaaaaa", sixteen spaces or a
// short word repeated do not.
const (
	minTokenLength   = 16
	minTokenDistinct = 8
)

// weakToken says why token is not fit to guard the admin API, or "" when
// it is.
func weakToken(token string) string {
	if strings.TrimSpace(token) == "" {
		return "the token is only whitespace; generate one, e.g. openssl rand -hex 32"
	}
	if strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "the token contains whitespace or control characters, which do not survive an Authorization header; generate one, e.g. openssl rand -hex 32"
	}
	if n := len([]rune(token)); n < minTokenLength {
		return fmt.Sprintf("want at least %d characters (it has %d); generate one, e.g. openssl rand -hex 32", minTokenLength, n)
	}
	distinct := map[rune]bool{}
	for _, r := range token {
		distinct[r] = true
	}
	if len(distinct) < minTokenDistinct {
		return fmt.Sprintf("the token is too easy to guess: it uses %d different characters, want at least %d; generate one, e.g. openssl rand -hex 32", len(distinct), minTokenDistinct)
	}
	return ""
}

// prefixGlob are the characters that SCAN's MATCH pattern gives a meaning.
const prefixGlob = `*?[]\`

// prefixProblem says what is wrong with a key prefix, or "" when nothing
// is. The prefix is matched as a SCAN pattern (prefix*) when the daemon
// looks for its own keys: a glob character in it would match, and let the
// reconciler remove, keys of another prefix. Braces would make part of the
// prefix a Cluster hash tag and put every key in one slot.
func prefixProblem(p string) string {
	switch {
	case p == "":
		return "want a non-empty prefix"
	case strings.ContainsAny(p, "{}"):
		return "want a prefix without braces: they would make part of it a Redis Cluster hash tag"
	case strings.ContainsAny(p, prefixGlob):
		return "want a prefix without *, ?, [, ] or \\: the daemon finds its keys with SCAN MATCH <prefix>*, where those characters are wildcards that would match keys of other prefixes"
	case strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "want a prefix without spaces or control characters"
	}
	return ""
}
