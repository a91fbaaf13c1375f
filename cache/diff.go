package cache

import "slices"

// ChangedKeys returns the config keys whose value differs between two
// deployed documents of one instance, sorted: keys present in only one of
// them, keys whose value differs (a null value differs from ""), and, for
// connections, keys whose status differs — a connection's value is a secret
// that is never cached, and its refresh times move without a deploy. A key
// that turned from a connection into another type, or back, counts as
// changed. A nil document counts as one without config. The result is never
// nil: an empty slice means nothing changed.
//
// This is the rule behind the changed_keys of the events channel
// (docs/redis.md): the daemon publishes what it returns, and a Reader's
// Watch uses it when a message does not carry the field.
func ChangedKeys(prev, next *Doc) []string {
	var a, b map[string]ConfigValue
	if prev != nil {
		a = prev.Config
	}
	if next != nil {
		b = next.Config
	}
	out := []string{}
	for k, av := range a {
		if bv, ok := b[k]; !ok || compared(av) != compared(bv) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// comparedPart is what ChangedKeys compares of one config variable.
type comparedPart struct {
	connection bool
	null       bool   // the value is null (never for a connection)
	s          string // the value, or a connection's status
}

func compared(c ConfigValue) comparedPart {
	if c.IsConnection() {
		return comparedPart{connection: true, s: c.Status}
	}
	if c.Value == nil {
		return comparedPart{null: true}
	}
	return comparedPart{s: *c.Value}
}
