package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/prismcache/prismcache/internal/webhook/examples"
)

// hmacHex is the openssl-equivalent computation, written out here rather
// than taken from the code under test.
func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignRFC4231(t *testing.T) {
	// RFC 4231, test case 2.
	got := hex.EncodeToString(Sign([]byte("Jefe"), []byte("what do ya want for nothing?")))
	if want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerifyPayloads(t *testing.T) {
	const secret = "whsec_0123456789abcdef"
	v := NewVerifier(secret)
	for name, body := range examples.All() {
		t.Run(name, func(t *testing.T) {
			sig := SignatureValue(secret, body)
			if want := "sha256=" + hmacHex(secret, body); sig != want {
				t.Fatalf("SignatureValue = %s, want %s", sig, want)
			}
			for _, header := range []string{
				sig,
				"sha256=" + strings.ToUpper(hmacHex(secret, body)),
				" " + sig + "\t",
			} {
				if err := v.Verify(body, header); err != nil {
					t.Errorf("Verify(%q) = %v", header, err)
				}
			}
		})
	}
}

// TestVerifyOpenSSL signs the payloads with the command the payload README
// gives, when openssl is installed.
func TestVerifyOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	const secret = "s3cr3t with spaces"
	for name, body := range examples.All() {
		cmd := exec.Command(openssl, "dgst", "-sha256", "-hmac", secret, "-hex")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl on %s: %v", name, err)
		}
		fields := strings.Fields(string(out))
		want := "sha256=" + fields[len(fields)-1]
		if got := SignatureValue(secret, body); got != want {
			t.Errorf("%s: SignatureValue = %s, openssl says %s", name, got, want)
		}
		if err := NewVerifier(secret).Verify(body, want); err != nil {
			t.Errorf("%s: Verify(openssl's signature) = %v", name, err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	const secret = "right"
	body := examples.Must(t, "instance.deployed.json")
	digest := hmacHex(secret, body)
	tampered := bytes.Replace(body, []byte("instance.deployed"), []byte("instance.deleted!"), 1)
	tests := []struct {
		name   string
		body   []byte
		header string
		want   error
	}{
		{"wrong secret", body, SignatureValue("wrong", body), ErrBadSignature},
		{"tampered body", tampered, "sha256=" + digest, ErrBadSignature},
		{"trailing newline added", append(append([]byte(nil), body...), '\n'), "sha256=" + digest, ErrBadSignature},
		{"empty body", nil, "sha256=" + digest, ErrBadSignature},
		{"missing header", body, "", ErrNoSignature},
		{"blank header", body, "  \t", ErrNoSignature},
		{"no prefix", body, digest, ErrBadSignature},
		{"upper-case prefix", body, "SHA256=" + digest, ErrBadSignature},
		{"other algorithm", body, "sha1=" + digest, ErrBadSignature},
		{"prefix only", body, "sha256=", ErrBadSignature},
		{"short digest", body, "sha256=" + digest[:62], ErrBadSignature},
		{"odd length", body, "sha256=" + digest[:63], ErrBadSignature},
		{"long digest", body, "sha256=" + digest + "00", ErrBadSignature},
		{"non-hex", body, "sha256=" + strings.Repeat("zz", 32), ErrBadSignature},
		{"base64 digest", body, "sha256=" + "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=", ErrBadSignature},
		{"two signatures", body, "sha256=" + digest + ",sha256=" + digest, ErrBadSignature},
		{"space inside", body, "sha256= " + digest, ErrBadSignature},
	}
	v := NewVerifier(secret)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := v.Verify(tt.body, tt.header); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyRotation(t *testing.T) {
	body := []byte(`{"event_type":"instance.updated"}`)
	v := NewVerifier("old-secret", "", "new-secret")
	if !v.Enabled() {
		t.Fatal("Enabled() = false with two secrets")
	}
	for _, secret := range []string{"old-secret", "new-secret"} {
		if err := v.Verify(body, SignatureValue(secret, body)); err != nil {
			t.Errorf("signed with %s: %v", secret, err)
		}
	}
	if err := v.Verify(body, SignatureValue("third-secret", body)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signed with another secret: %v, want ErrBadSignature", err)
	}
}

func TestVerifyDisabled(t *testing.T) {
	for _, v := range []*Verifier{NewVerifier(), NewVerifier("", ""), {}} {
		if v.Enabled() {
			t.Errorf("Enabled() = true for %+v", v)
		}
		for _, header := range []string{"", "garbage", SignatureValue("x", []byte("other"))} {
			if err := v.Verify([]byte("anything"), header); err != nil {
				t.Errorf("Verify(%q) with no secrets = %v, want nil", header, err)
			}
		}
	}
}
