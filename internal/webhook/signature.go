package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the raw body>".
const SignatureHeader = "X-Webhook-Signature"

// EventHeader carries the event type.
const EventHeader = "X-Webhook-Event"

// Errors Verify returns.
var (
	ErrNoSignature  = errors.New("missing " + SignatureHeader + " header")
	ErrBadSignature = errors.New("signature does not match the body")
)

// Verifier checks webhook signatures against one or more secrets, so a
// secret can be rotated without dropping deliveries: add the new secret,
// change it in Prismatic, then remove the old one. A Verifier with no
// secrets accepts every body (the daemon allows that only with
// --insecure-skip-signature). It is safe for concurrent use.
type Verifier struct {
	secrets [][]byte
}

// NewVerifier returns a Verifier accepting a signature made with any of
// secrets; empty secrets are ignored.
func NewVerifier(secrets ...string) *Verifier {
	v := &Verifier{}
	for _, s := range secrets {
		if s != "" {
			v.secrets = append(v.secrets, []byte(s))
		}
	}
	return v
}

// Enabled reports whether the Verifier checks anything.
func (v *Verifier) Enabled() bool { return len(v.secrets) > 0 }

// Verify checks header (the X-Webhook-Signature value) against body. The
// comparison is constant-time in the digest, and every secret is tried.
func (v *Verifier) Verify(body []byte, header string) error {
	if !v.Enabled() {
		return nil
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return ErrBadSignature
	}
	match := false
	for _, secret := range v.secrets {
		if hmac.Equal(got, Sign(secret, body)) {
			match = true
		}
	}
	if !match {
		return ErrBadSignature
	}
	return nil
}

// Sign returns the HMAC-SHA256 of body keyed with secret.
func Sign(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// SignatureValue returns the X-Webhook-Signature value Prismatic sends for
// body: "sha256=" and the lower-case hex digest.
func SignatureValue(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(Sign([]byte(secret), body))
}
