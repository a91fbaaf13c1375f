package webhook

import (
	"bytes"
	"strings"
)

// scanPayload decodes body into a payload in one pass, without
// encoding/json, when body is the plain common case; ok false leaves body
// to decodePayload. It exists because json.Unmarshal into payload, by
// reflection, cost about a tenth of the daemon's CPU per webhook.
//
// Its result must be exactly what json.Unmarshal would give, so it takes a
// body only when it is sure of both: that the whole body is valid JSON (one
// object, then only whitespace), and that it knows what each kept value
// decodes to. It leaves to encoding/json, which then also reports every
// refusal, a body with:
//   - a backslash escape, a control character or a byte outside ASCII in a
//     key of the envelope (the top object and the resource objects in it)
//     or in a kept value: encoding/json decodes escapes, replaces invalid
//     UTF-8, and folds keys by Unicode rules ("Key" is "key");
//   - a key of the envelope that matches a wanted one only
//     case-insensitively, as encoding/json matches keys;
//   - a wanted key twice in one object;
//   - a wanted key whose value is neither null nor of its type (a string,
//     or an object for a resource);
//   - a resource nested in a resource nested in a resource (a customer of
//     instance.customer), or a skipped value nested deeper than
//     maxSkipDepth;
//   - anything it is not sure is valid JSON, anywhere.
//
// Skipped values are checked for validity but neither decoded nor copied;
// all kept strings share one allocation.
func scanPayload(body []byte) (*payload, bool) {
	s := scanner{data: body}
	s.space()
	if s.off == len(s.data) || s.data[s.off] != '{' {
		return nil, false
	}
	s.off++
	s.out = new(scanned)
	if !s.object(nil, 1) {
		return nil, false
	}
	if s.space(); s.off != len(s.data) {
		return nil, false
	}
	s.copyStrings()
	return &s.out.p, true
}

const (
	// maxResourceDepth is how deep a resource object may be: 1 is the top
	// object, 2 instance, connection and customer, 3 the customer of one
	// of those.
	maxResourceDepth = 3
	// maxSkipDepth bounds the nesting of a skipped value; it is one bit
	// each of a uint64.
	maxSkipDepth = 64
	// maxKept is how many strings a payload can keep: event_type and
	// timestamp, and five of each of the most resources it can hold.
	maxKept = 2 + 5*maxResources
	// maxResources: three at depth 2, one at depth 3 in each.
	maxResources = 6
)

// scanned holds what scanPayload returns: the payload and what its
// pointers point to, in one allocation.
type scanned struct {
	p    payload
	res  [maxResources]resource
	strs [maxKept]string
}

type scanner struct {
	data []byte
	off  int
	out  *scanned
	nres int
	// kept[i] is where in data out.strs[i] is, until copyStrings.
	kept  [maxKept]struct{ start, end int }
	nkept int
}

// The keys of the top object and of a resource, in the order of their
// field numbers.
var (
	topKeys      = [...]string{"event_type", "timestamp", "instance", "connection", "customer"}
	resourceKeys = [...]string{"id", "name", "key", "external_id", "externalId", "customer"}
)

const (
	unwanted  = -1 // a key of no field: skip its value
	foldMatch = -2 // a key encoding/json would match case-insensitively
)

// field returns the number of the field key names in keys, or unwanted,
// or foldMatch. key is ASCII.
func field(keys []string, key []byte) int {
	for i, k := range keys {
		if string(key) == k {
			return i
		}
	}
	for _, k := range keys {
		if asciiEqualFold(key, k) {
			return foldMatch
		}
	}
	return unwanted
}

// asciiEqualFold is bytes.EqualFold for ASCII, which is how encoding/json
// folds an ASCII key.
func asciiEqualFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// object scans the members of an envelope object, just after its '{', and
// its '}'. r is the resource it decodes into, nil for the top object.
func (s *scanner) object(r *resource, depth int) bool {
	keys := topKeys[:]
	if r != nil {
		keys = resourceKeys[:]
	}
	var seen uint
	if s.space(); s.peek() == '}' {
		s.off++
		return true
	}
	for {
		start, end, ok := s.plainString()
		if !ok {
			return false
		}
		if s.space(); s.peek() != ':' {
			return false
		}
		s.off++
		s.space()
		f := field(keys, s.data[start:end])
		switch {
		case f == foldMatch:
			return false
		case f == unwanted:
			if !s.skip() {
				return false
			}
		case seen&(1<<f) != 0:
			return false
		default:
			seen |= 1 << f
			if !s.keep(r, f, depth) {
				return false
			}
		}
		s.space()
		switch s.peek() {
		case ',':
			s.off++
			s.space()
		case '}':
			s.off++
			return true
		default:
			return false
		}
	}
}

// keep scans the value of field f of r (of the top object when r is nil).
func (s *scanner) keep(r *resource, f, depth int) bool {
	if r == nil {
		p := &s.out.p
		switch f {
		case 0:
			return s.str(&p.EventType)
		case 1:
			return s.str(&p.Timestamp)
		case 2:
			return s.resource(&p.Instance, depth+1)
		case 3:
			return s.resource(&p.Connection, depth+1)
		default:
			return s.resource(&p.Customer, depth+1)
		}
	}
	switch f {
	case 0:
		return s.str(&r.ID)
	case 1:
		return s.str(&r.Name)
	case 2:
		return s.str(&r.Key)
	case 3:
		return s.str(&r.ExternalID)
	case 4:
		return s.str(&r.ExtIDCamel)
	default:
		return s.resource(&r.Customer, depth+1)
	}
}

// str scans a kept string or null into *dst.
func (s *scanner) str(dst **string) bool {
	if s.literal("null") {
		return true
	}
	start, end, ok := s.plainString()
	if !ok || s.nkept == maxKept {
		return false
	}
	s.kept[s.nkept].start, s.kept[s.nkept].end = start, end
	*dst = &s.out.strs[s.nkept]
	s.nkept++
	return true
}

// resource scans a resource object or null into *dst.
func (s *scanner) resource(dst **resource, depth int) bool {
	if s.literal("null") {
		return true
	}
	if depth > maxResourceDepth || s.peek() != '{' || s.nres == maxResources {
		return false
	}
	s.off++
	r := &s.out.res[s.nres]
	s.nres++
	*dst = r
	return s.object(r, depth)
}

// copyStrings gives the kept strings their bytes, all in one allocation.
func (s *scanner) copyStrings() {
	n := 0
	for _, k := range s.kept[:s.nkept] {
		n += k.end - k.start
	}
	var b strings.Builder
	b.Grow(n)
	for _, k := range s.kept[:s.nkept] {
		b.Write(s.data[k.start:k.end])
	}
	all := b.String()
	for i, k := range s.kept[:s.nkept] {
		n := k.end - k.start
		s.out.strs[i], all = all[:n], all[n:]
	}
}

// peek returns the next byte, or 0 at the end of the data (where a 0 byte
// is never valid JSON either).
func (s *scanner) peek() byte {
	if s.off < len(s.data) {
		return s.data[s.off]
	}
	return 0
}

// space skips JSON whitespace.
func (s *scanner) space() {
	for s.off < len(s.data) {
		switch s.data[s.off] {
		case ' ', '\t', '\r', '\n':
			s.off++
		default:
			return
		}
	}
}

// literal consumes lit (true, false or null) if it is next.
func (s *scanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.data[s.off:], []byte(lit)) {
		return false
	}
	s.off += len(lit)
	return true
}

// plainString scans a string whose bytes are what it decodes to: ASCII, no
// escape (and no control character, which JSON does not allow). It returns
// where its contents are.
func (s *scanner) plainString() (start, end int, ok bool) {
	if s.peek() != '"' {
		return 0, 0, false
	}
	start = s.off + 1
	for i := start; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.off = i + 1
			return start, i, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// skipString scans any valid JSON string: escapes are checked, not
// decoded; bytes outside ASCII are taken as they are, as encoding/json
// takes them.
func (s *scanner) skipString() bool {
	if s.peek() != '"' {
		return false
	}
	for i := s.off + 1; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.off = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			i++
			if i == len(s.data) {
				return false
			}
			switch s.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.data) {
					return false
				}
				for _, h := range s.data[i+1 : i+5] {
					if !isHex(h) {
						return false
					}
				}
				i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipNumber scans a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) skipNumber() bool {
	if s.peek() == '-' {
		s.off++
	}
	switch c := s.peek(); {
	case c == '0':
		s.off++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.off++
		if !s.digits() {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.off++
		if c := s.peek(); c == '+' || c == '-' {
			s.off++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits skips digits and says whether there was one.
func (s *scanner) digits() bool {
	start := s.off
	for s.off < len(s.data) && '0' <= s.data[s.off] && s.data[s.off] <= '9' {
		s.off++
	}
	return s.off > start
}

// skip scans any JSON value without keeping it, with no recursion: the
// bits of open say which open containers are objects.
func (s *scanner) skip() bool {
	var open uint64
	depth := 0
	for {
		// A value is next.
		switch c := s.peek(); {
		case c == '{' || c == '[':
			if depth == maxSkipDepth {
				return false
			}
			s.off++
			open &^= 1 << depth
			if c == '{' {
				open |= 1 << depth
			}
			depth++
			closer := byte(']')
			if c == '{' {
				closer = '}'
			}
			if s.space(); s.peek() == closer {
				s.off++
				depth--
				break
			}
			if c == '{' && !s.key() {
				return false
			}
			continue
		case c == '"':
			if !s.skipString() {
				return false
			}
		case c == '-' || '0' <= c && c <= '9':
			if !s.skipNumber() {
				return false
			}
		case c == 't':
			if !s.literal("true") {
				return false
			}
		case c == 'f':
			if !s.literal("false") {
				return false
			}
		case c == 'n':
			if !s.literal("null") {
				return false
			}
		default:
			return false
		}
		// A value ended: close what it ends, up to the next value.
		for {
			if depth == 0 {
				return true
			}
			s.space()
			object := open&(1<<(depth-1)) != 0
			c := s.peek()
			s.off++
			switch {
			case c == ',':
				s.space()
				if object && !s.key() {
					return false
				}
			case object && c == '}', !object && c == ']':
				depth--
				continue
			default:
				return false
			}
			break
		}
	}
}

// key scans an object key of a skipped value, its ':' and the space up to
// the value.
func (s *scanner) key() bool {
	if !s.skipString() {
		return false
	}
	if s.space(); s.peek() != ':' {
		return false
	}
	s.off++
	s.space()
	return true
}
