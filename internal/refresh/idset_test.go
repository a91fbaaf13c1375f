package refresh

import (
	"fmt"
	"testing"
)

// TestIDSetHoldsWhatWasAdded: every added id is found, ids never added are
// not (bar a hash collision, which 20,000 random ids do not produce), and
// repeats and adding after a lookup work.
func TestIDSetHoldsWhatWasAdded(t *testing.T) {
	s := newIDSet(10)
	for i := range 10000 {
		s.add(fmt.Sprintf("SW5zdGFuY2U6%06d", i))
	}
	s.add("SW5zdGFuY2U6000001") // a repeat
	for i := range 10000 {
		if id := fmt.Sprintf("SW5zdGFuY2U6%06d", i); !s.has(id) {
			t.Fatalf("%s was added but is not found", id)
		}
	}
	for i := 10000; i < 20000; i++ {
		if id := fmt.Sprintf("SW5zdGFuY2U6%06d", i); s.has(id) {
			t.Fatalf("%s was never added but is found", id)
		}
	}
	s.add("late")
	if !s.has("late") || !s.has("SW5zdGFuY2U6000042") {
		t.Fatal("an id added after a lookup, or one added before it, is not found")
	}
	if got := len(s.hashes); got != 10001 {
		t.Fatalf("%d hashes held, want 10001 (repeats kept once)", got)
	}
}

// TestIDSetHintIsBounded: a total count from the API far beyond any fleet
// does not reserve memory for it.
func TestIDSetHintIsBounded(t *testing.T) {
	if c := cap(newIDSet(1 << 40).hashes); c > maxIDSetHint {
		t.Fatalf("a hint of 2^40 reserved room for %d ids, want at most %d", c, maxIDSetHint)
	}
	if c := cap(newIDSet(-5).hashes); c != 0 {
		t.Fatalf("a negative hint reserved room for %d ids", c)
	}
}
