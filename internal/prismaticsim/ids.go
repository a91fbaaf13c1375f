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
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.r.Uint64())
	binary.BigEndian.PutUint64(b[8:], g.r.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// hex returns n random lower-case hex bytes, for invented credentials.
func (g *idGen) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return hex.EncodeToString(b)
}

// globalID makes a GraphQL global id as Prismatic's: standard base64, with
// padding, of "<TypeName>:<uuid>".
func globalID(typeName, uuid string) string {
	return base64.StdEncoding.EncodeToString([]byte(typeName + ":" + uuid))
}

// newID makes a fresh global id of typeName.
func (g *idGen) newID(typeName string) string {
	return globalID(typeName, g.uuid())
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
