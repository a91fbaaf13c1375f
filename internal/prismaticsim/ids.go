package prismaticsim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strings"
)

// idGen makes version-4-shaped UUIDs from a seeded source, so a seed always
// yields the same ids in the same order. Guarded by Sim.mu.
type idGen struct {
	r *rand.Rand
}

func newIDGen(seed uint64) *idGen {
	return &idGen{r: rand.New(rand.NewPCG(seed, 0x707269736d617469))} // "prismati"
}

func (g *idGen) uuid() string {
	var buf [36]byte
	return string(g.appendUUID(buf[:0]))
}

// appendUUID appends a fresh uuid to dst. The ids are made into buffers on
// the stack, not by joining strings, so that seeding a million instances
// allocates little more than the ids themselves.
func (g *idGen) appendUUID(dst []byte) []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.r.Uint64())
	binary.BigEndian.PutUint64(b[8:], g.r.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	dst = hex.AppendEncode(dst, b[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, b[10:])
}

// hex returns n random lower-case hex bytes, for invented credentials.
func (g *idGen) hex(n int) string {
	var buf [64]byte
	return string(g.appendHex(buf[:0], n))
}

// appendHex appends n random lower-case hex bytes to dst.
func (g *idGen) appendHex(dst []byte, n int) []byte {
	for range n {
		dst = hex.AppendEncode(dst, []byte{byte(g.r.Uint32())})
	}
	return dst
}

// secret returns prefix followed by n random hex bytes.
func (g *idGen) secret(prefix string, n int) string {
	var buf [96]byte
	return string(g.appendHex(append(buf[:0], prefix...), n))
}

// globalID makes a GraphQL global id as Prismatic's: standard base64, with
// padding, of "<TypeName>:<uuid>".
func globalID(typeName, uuid string) string {
	var buf [96]byte
	raw := append(append(append(buf[:0], typeName...), ':'), uuid...)
	return encodeID(raw)
}

// encodeID is the base64 of a raw global id, as one allocation.
func encodeID(raw []byte) string {
	var buf [128]byte
	out := buf[:0]
	if n := base64.StdEncoding.EncodedLen(len(raw)); n > len(buf) {
		out = make([]byte, 0, n)
	}
	return string(base64.StdEncoding.AppendEncode(out, raw))
}

// newID makes a fresh global id of typeName.
func (g *idGen) newID(typeName string) string {
	var buf [96]byte
	raw := g.appendUUID(append(append(buf[:0], typeName...), ':'))
	return encodeID(raw)
}

// decodeGlobalID splits a global id into its type name and uuid. It accepts
// padded and unpadded base64.
func decodeGlobalID(id string) (typeName, uuid string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(id)
		if err != nil {
			return "", "", false
		}
	}
	typeName, uuid, ok = strings.Cut(string(raw), ":")
	if !ok || typeName == "" || uuid == "" {
		return "", "", false
	}
	return typeName, uuid, true
}

// canonicalID returns the padded form of a global id of the given type, or ""
// when id is malformed or of another type. Admin routes also accept a bare
// uuid.
func canonicalID(typeName, id string) string {
	if t, u, ok := decodeGlobalID(id); ok {
		if t != typeName {
			return ""
		}
		return globalID(t, u)
	}
	if len(id) == 36 && strings.Count(id, "-") == 4 {
		return globalID(typeName, strings.ToLower(id))
	}
	return ""
}
