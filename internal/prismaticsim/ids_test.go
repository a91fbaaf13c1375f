package prismaticsim

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
)

// TestIDsAsJoinedStrings checks the ids made in buffers against the plain
// way of making them: the same seed must give the same ids as before.
func TestIDsAsJoinedStrings(t *testing.T) {
	got, ref := newIDGen(7), newIDGen(7)
	refUUID := func() string {
		var b [16]byte
		for i := range 2 {
			v := ref.r.Uint64()
			for j := range 8 {
				b[i*8+j] = byte(v >> (56 - 8*j))
			}
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		h := hex.EncodeToString(b[:])
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	refHex := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(ref.r.Uint32())
		}
		return hex.EncodeToString(b)
	}
	for i := range 1000 {
		typ := []string{"Instance", "InstanceConfigVariable", "Expression"}[i%3]
		if g, w := got.newID(typ), base64.StdEncoding.EncodeToString([]byte(typ+":"+refUUID())); g != w {
			t.Fatalf("newID(%q) = %q, want %q", typ, g, w)
		}
		if g, w := got.uuid(), refUUID(); g != w {
			t.Fatalf("uuid() = %q, want %q", g, w)
		}
		if g, w := got.secret(SecretMarker+"-cs-", 12), SecretMarker+"-cs-"+refHex(12); g != w {
			t.Fatalf("secret = %q, want %q", g, w)
		}
		if g, w := got.hex(6), refHex(6); g != w {
			t.Fatalf("hex(6) = %q, want %q", g, w)
		}
	}
	if g, w := globalID("Customer", "0e71ea89-48a8-4cba-a532-e4924561d41b"), base64.StdEncoding.EncodeToString([]byte("Customer:0e71ea89-48a8-4cba-a532-e4924561d41b")); g != w {
		t.Fatalf("globalID = %q, want %q", g, w)
	}
}
