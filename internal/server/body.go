package server

import (
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"net/http"
	"os"
	"time"
)

// Why reading a body failed.
var (
	errBodyTooLarge = errors.New("body too large")
	errBodyCut      = errors.New("body cut to make room for newer requests")
	errBodyStalled  = errors.New("body stalled")
)

// firstChunk is the buffer a body of unknown or large size starts with; it
// grows by doubling, up to the body's reservation, as bytes arrive. A
// sender pays for its memory by sending.
const firstChunk = 16 << 10

// bodyRead is what reading a body gave.
type bodyRead struct {
	body []byte
	sum  [sha256.Size]byte // SHA-256 of the body, the dedup key
}

// readBody reads r's body into memory within res, writing every byte to
// sink (the signature check) as it arrives, so the body is read once and
// never more than limit bytes of it are kept. Each read must bring bytes
// within stall; the whole body must arrive by deadline. When the budget
// cuts res, the blocked read returns and the result is errBodyCut.
func readBody(rc *http.ResponseController, r *http.Request, res *Reservation, sink io.Writer,
	limit int64, stall time.Duration, deadline time.Time, now func() time.Time) (bodyRead, error) {
	var out bodyRead
	digest := sha256.New()
	buf := make([]byte, 0, grow(0, limit))
	res.Hold(int64(cap(buf)))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= limit+1 {
				return out, errBodyTooLarge
			}
			next := make([]byte, len(buf), grow(cap(buf), limit))
			copy(next, buf)
			res.Hold(int64(cap(next) - cap(buf)))
			buf = next
		}
		// A deadline per read drops a stalled body; rc refuses (a recorder
		// in tests) when the connection has none, which is fine there.
		_ = rc.SetReadDeadline(minTime(now().Add(stall), deadline))
		if res.Cut() {
			return out, errBodyCut
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			chunk := buf[len(buf) : len(buf)+n]
			_, _ = sink.Write(chunk)
			digest.Write(chunk)
			buf = buf[:len(buf)+n]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			switch {
			case res.Cut():
				return out, errBodyCut
			case errors.Is(err, os.ErrDeadlineExceeded):
				return out, errBodyStalled
			}
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return out, errBodyTooLarge
			}
			return out, err
		}
	}
	if int64(len(buf)) > limit {
		return out, errBodyTooLarge
	}
	out.body = buf
	sumInto(digest, &out.sum)
	return out, nil
}

// grow is the next capacity of a body buffer of capacity c whose body may
// be limit bytes: one more than limit at most, which tells a body over the
// limit from one at it.
func grow(c int, limit int64) int {
	next := int64(max(2*c, firstChunk))
	return int(min(next, limit+1))
}

func sumInto(h hash.Hash, dst *[sha256.Size]byte) { h.Sum(dst[:0]) }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
