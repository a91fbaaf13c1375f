package webhook

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestDecodeGlobalID(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name     string
		id       string
		typ, uid string // typ "" when not a global id
	}{
		{"instance", exampleInstanceID, TypeInstance, "ec9c5b3a-f3a7-409b-9e3d-80700145e5e4"},
		{"instance config variable", exampleICVID, TypeInstanceConfigVariable, "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"},
		{"customer config variable", exampleCCVID, TypeCustomerConfigVariable, "7c6b5a49-3827-4160-9f8e-7d6c5b4a3928"},
		{"customer", exampleCustomerID, TypeCustomer, "5a1f0c2e-7d44-4c1b-8f0e-2b9d6f3a1c77"},
		{"user", "VXNlcjoyMzZkMDA3ZS0zZGIxLTQ4MWItOTMyNS0zMjhhYTE0OTY5MDA=", "User", "236d007e-3db1-481b-9325-328aa1496900"},
		{"scoped config variable", b64([]byte("ScopedConfigVariable:0b7e6f3c")), TypeScopedConfigVariable, "0b7e6f3c"},
		{"unpadded, one =", strings.TrimRight(exampleICVID, "="), TypeInstanceConfigVariable, "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"},
		{"unpadded, two =", strings.TrimRight(b64([]byte("Instance:abcd")), "="), TypeInstance, "abcd"},
		{"colon in the uuid part", b64([]byte("Instance:a:b")), TypeInstance, "a:b"},
		{"empty", "", "", ""},
		{"not base64", "not a global id!", "", ""},
		{"wrong padding", exampleICVID + "=", "", ""},
		{"bad length", "SW5zdGFuY2U6Z", "", ""},
		{"no colon", b64([]byte("Instance")), "", ""},
		{"empty type", b64([]byte(":ec9c5b3a")), "", ""},
		{"empty uuid", b64([]byte("Instance:")), "", ""},
		{"plain uuid", "c1e226a7-8d13-4d46-98d9-a99a2d6bdb37", "", ""},
		{"url-safe alphabet", base64.URLEncoding.EncodeToString([]byte("Instance:\xfb\xff")), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, uid, ok := DecodeGlobalID(tt.id)
			if ok != (tt.typ != "") || typ != tt.typ || uid != tt.uid {
				t.Errorf("DecodeGlobalID(%q) = %q, %q, %v; want %q, %q", tt.id, typ, uid, ok, tt.typ, tt.uid)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{exampleInstanceID, true},
		{exampleICVID, true},
		{strings.TrimRight(exampleICVID, "="), true},
		{"c1e226a7-8d13-4d46-98d9-a99a2d6bdb37", true},
		{"a+b/c=d-e_f:g.h", true},
		{"x", true},
		{strings.Repeat("A", 256), true},
		{strings.Repeat("A", 257), false},
		{"", false},
		{"{hash}", false},
		{"a{b", false},
		{"a}b", false},
		{"a b", false},
		{" a", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\x00b", false},
		{"a\x7fb", false},
		{"é", false},
		{"a*b", false},
		{"a%2Fb", false},
		{"a,b", false},
		{`a"b`, false},
		{"a\\b", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
