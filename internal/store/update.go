package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Updated is what Update did.
type Updated struct {
	// Mutation is what was written; nil when decide asked for nothing.
	Mutation *Mutation
	// Rev is the entry's rev after the write.
	Rev int64
	// Tombstoned: the instance was deleted, so nothing was written.
	Tombstoned bool
	// Duplicate: with a digest, the body was applied already.
	Duplicate bool
	// IndexErr is set when the entry was written but its index rows were
	// not (see ErrIndex).
	IndexErr error
}

// UpdateOptions tune one Update. The zero value reads the whole entry and
// writes every time.
type UpdateOptions struct {
	// Sum, when set, makes the write happen once per webhook body with this
	// digest: the write marks the body applied for Window in the same
	// script, and a body already marked writes nothing (Updated.Duplicate).
	// A delivery that fails before the write is therefore applied in full
	// when retried, and one that got through is never applied twice.
	Sum    string
	Window time.Duration
	// WithoutDoc has Update decide first on the entry read without its
	// document (State.DocOmitted), which spares reading and decoding it for
	// changes that only touch the entry's flags. When decide then asks for
	// anything but such a change (a mutation without KeepDoc, or a delete,
	// whose index rows come from the document), Update reads the whole entry
	// and decides again. When the store remembers the entry (Options.Remember)
	// it decides first on the remembered state, as on a Prior, without
	// reading at all.
	WithoutDoc bool
	// Prior, when set, is the entry as read earlier (by Load), for the first
	// decision: a caller that reads it while it waits on something else
	// saves the read's round trip afterwards. If the entry changed since,
	// the write's compare-and-set fails and Update reads it and decides
	// again, as after any lost race; a decision to write nothing, which no
	// compare-and-set checks, is made again on a fresh read.
	Prior *State
	// Alongside, when set, runs while the entry is first read (first of
	// all, when the first decision needs no read); the write waits for it,
	// and when it fails nothing is written and Update returns its error.
	// The intake uses it for work that must be in Redis before a webhook's
	// effect, without a round trip of its own when the entry is read.
	Alongside func() error
}

// maxUpdateAttempts bounds how often Update decides again after losing a
// race; an entry that changes that often is an error worth reporting.
const maxUpdateAttempts = 16

// Update reads the entry of instance id, asks decide for a mutation, and
// writes it with a compare-and-set on the rev it read, reading and
// deciding again whenever another write got in first. decide may be called
// several times and must be a pure function of the state; nil means
// nothing to write.
func (s *Store) Update(ctx context.Context, id string, opts UpdateOptions, decide func(State) *Mutation) (Updated, error) {
	if opts.Prior == nil && opts.WithoutDoc {
		// A change of flags is decided on the entry as this process last
		// read or wrote it, when it remembers it: the write checks it is
		// still the entry, as it checks a Prior.
		if st, ok := s.memory.recall(id); ok {
			opts.Prior = &st
		}
	}
	nothing := func() error { return nil }
	switch {
	case opts.Alongside == nil:
		return s.update(ctx, id, opts, nothing, decide)
	case opts.Prior != nil:
		// No read for it to overlap with: it runs first.
		if err := opts.Alongside(); err != nil {
			return Updated{}, err
		}
		return s.update(ctx, id, opts, nothing, decide)
	}
	// Alongside runs in a goroutine of its own so that its round trip and
	// the entry's read overlap (on a batching client they leave in one
	// pipeline); the write waits for it, and so does Update's return.
	alongside := make(chan error, 1)
	go func() { alongside <- opts.Alongside() }()
	var aerr error
	waited := false
	wait := func() error {
		if !waited {
			aerr, waited = <-alongside, true
		}
		return aerr
	}
	up, err := s.update(ctx, id, opts, wait, decide)
	if werr := wait(); werr != nil && err == nil {
		return Updated{}, werr
	}
	return up, err
}

// update is Update's loop; before runs ahead of the write.
func (s *Store) update(ctx context.Context, id string, opts UpdateOptions, before func() error, decide func(State) *Mutation) (Updated, error) {
	withDoc, prior := !opts.WithoutDoc, opts.Prior
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		var st State
		var seen bool
		var err error
		fromPrior := prior != nil
		if fromPrior {
			st, prior = *prior, nil
		} else if st, seen, err = s.load(ctx, id, opts.Sum, withDoc); err != nil {
			return Updated{}, err
		}
		if seen {
			return Updated{Duplicate: true}, nil
		}
		m := decide(st)
		if m == nil {
			if fromPrior {
				continue // no compare-and-set checks a skip: decide again on the entry as it is now
			}
			return Updated{}, nil
		}
		if st.DocOmitted && (m.Delete || !m.KeepDoc || st.Entry.Rev == 0) {
			// The change needs the document: read it and decide on it.
			withDoc = true
			attempt--
			continue
		}
		if err := before(); err != nil {
			return Updated{}, err
		}
		rev, err := s.apply(ctx, id, st, true, *m, opts.Sum, opts.Window)
		switch {
		case errors.Is(err, ErrConflict):
			continue
		case errors.Is(err, ErrTombstoned):
			return Updated{Tombstoned: true}, nil
		case errors.Is(err, ErrDuplicate):
			return Updated{Duplicate: true}, nil
		case errors.Is(err, ErrIndex):
			return Updated{Mutation: m, Rev: rev, IndexErr: err}, nil
		case err != nil:
			return Updated{}, err
		}
		return Updated{Mutation: m, Rev: rev}, nil
	}
	return Updated{}, fmt.Errorf("update %s: the entry kept changing", id)
}
