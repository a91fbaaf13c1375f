// Package webhook turns a Prismatic event webhook into decided effects: it
// verifies the signature, parses the payload, and decides, as a pure
// function of the event and the current entry, what the event does to the
// cache. It does no I/O; internal/server feeds it requests and applies what
// it decides.
package webhook
