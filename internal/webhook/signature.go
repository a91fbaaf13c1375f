package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
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
	s, err := v.Begin(header)
	if err != nil {
		return err
	}
	_, _ = s.Write(body)
	return s.Verify()
}

// Begin starts checking a body that is still arriving: it checks the form
// of header at once (so a request without a well-formed signature is
// refused before its body is read), and returns a Stream to write the body
// to as it arrives. Nothing of the body is kept: the HMAC is computed on
// the fly, and Stream.Verify compares it once the last byte is in.
func (v *Verifier) Begin(header string) (*Stream, error) {
	if !v.Enabled() {
		return &Stream{}, nil
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return nil, ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return nil, ErrBadSignature
	}
	s := &Stream{want: got, macs: make([]hash.Hash, len(v.secrets))}
	for i, secret := range v.secrets {
		s.macs[i] = hmac.New(sha256.New, secret)
	}
	return s, nil
}

// Stream computes a body's HMAC under every secret of a Verifier while the
// body is written to it. It is not safe for concurrent use.
type Stream struct {
	want []byte
	macs []hash.Hash
}

// Write feeds the next bytes of the body; it never fails.
func (s *Stream) Write(p []byte) (int, error) {
	for _, m := range s.macs {
		m.Write(p)
	}
	return len(p), nil
}

// Verify reports whether the body written so far carries the signature
// given to Begin, under any of the secrets (every one is tried, in
// constant time in the digest). A Stream of a Verifier without secrets
// accepts every body.
func (s *Stream) Verify() error {
	if s.macs == nil {
		return nil
	}
	match := false
	for _, m := range s.macs {
		if hmac.Equal(s.want, m.Sum(nil)) {
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
