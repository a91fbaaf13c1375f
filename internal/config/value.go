package config

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// setting is one configurable value: its flag, its environment twin, and
// where it is stored. tool marks the settings that the commands which take
// no webhooks (prismcache resync) accept as flags too.
type setting struct {
	flag   string
	env    string
	usage  string
	value  flag.Value
	secret bool
	tool   bool
}

// Typed is a flag.Value that can name the kind of value it takes, for
// help texts: "-listen host:port" rather than "-listen value".
type Typed interface {
	flag.Value
	// TypeName is a short placeholder for the value, such as duration,
	// host:port or debug|info|warn|error.
	TypeName() string
}

type stringValue struct {
	p    *string
	name string // placeholder in help texts; "string" when empty
}

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v stringValue) Set(s string) error { *v.p = s; return nil }
func (v stringValue) TypeName() string   { return orDefault(v.name, "string") }

type listValue struct {
	p    *[]string
	name string
}

func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v listValue) Set(s string) error {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	*v.p = out
	return nil
}

func (v listValue) TypeName() string { return orDefault(v.name, "list") }

type intValue struct {
	p    *int
	name string
}

func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	*v.p = n
	return nil
}

func (v intValue) TypeName() string { return orDefault(v.name, "int") }

type floatValue struct {
	p    *float64
	name string
}

func (v floatValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	*v.p = f
	return nil
}

func (v floatValue) TypeName() string { return orDefault(v.name, "number") }

type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 30s, 5m, 1h)", s)
	}
	*v.p = d
	return nil
}

func (v durationValue) TypeName() string { return "duration" }

type boolValue struct{ p *bool }

func (v boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*v.p = b
	return nil
}

func (v boolValue) IsBoolFlag() bool { return true }
func (v boolValue) TypeName() string { return "" } // a bool flag takes no value

// enumValue is a string that must be one of a few words; any other value is
// refused as it is set, naming the allowed ones.
type enumValue struct {
	p       *string
	allowed []string
}

// Enum returns a flag.Value that stores into p and refuses any value but
// one of allowed, naming them. Its TypeName lists them.
func Enum(p *string, allowed ...string) Typed { return enumValue{p: p, allowed: allowed} }

func (v enumValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v enumValue) Set(s string) error {
	s = strings.TrimSpace(s)
	for _, a := range v.allowed {
		if s == a {
			*v.p = s
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", s, oneOf(v.allowed))
}

func (v enumValue) TypeName() string { return strings.Join(v.allowed, "|") }

// oneOf writes a, b or c.
func oneOf(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
