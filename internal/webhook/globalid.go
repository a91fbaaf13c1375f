package webhook

import (
	"encoding/base64"
	"strings"
)

// Global id types the daemon tells apart.
const (
	TypeInstance               = "Instance"
	TypeInstanceConfigVariable = "InstanceConfigVariable"
	TypeCustomerConfigVariable = "CustomerConfigVariable"
	TypeScopedConfigVariable   = "ScopedConfigVariable"
	TypeCustomer               = "Customer"
)

// DecodeGlobalID splits a Prismatic global id — base64 of "<Type>:<uuid>" —
// into its type and uuid. ok is false when id is not of that form.
func DecodeGlobalID(id string) (typ, uuid string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(id)
		if err != nil {
			return "", "", false
		}
	}
	typ, uuid, ok = strings.Cut(string(raw), ":")
	if !ok || typ == "" || uuid == "" {
		return "", "", false
	}
	return typ, uuid, true
}

// ValidID reports whether s can be an id the daemon stores: 1 to 256
// characters of base64, URL-safe base64 or the separators Prismatic's ids
// use. It keeps braces (Redis Cluster hash tags), whitespace and control
// characters out of keys.
func ValidID(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '+' || c == '/' || c == '=' || c == '-' || c == '_' || c == ':' || c == '.':
		default:
			return false
		}
	}
	return true
}
