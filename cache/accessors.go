package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Errors of the typed config accessors (Entry.String, Bool, Int, Float, JSON,
// Connection). They come wrapped in a *ConfigError that names the key; test
// for them with errors.Is.
var (
	// ErrNoSuchKey: the instance has no config variable with that key (or
	// the entry has no document).
	ErrNoSuchKey = errors.New("no such config variable")
	// ErrNullValue: the variable exists but Prismatic has no value for it.
	ErrNullValue = errors.New("config variable has no value")
	// ErrWrongType: the variable's dataType cannot be read by that accessor.
	ErrWrongType = errors.New("wrong config variable type")
)

// ConfigError is the error of a typed config accessor: which key, its
// dataType, what the accessor wanted, and why it failed (one of the sentinels
// above, a strconv error, or a JSON error).
type ConfigError struct {
	Key  string
	Type string // the variable's dataType; "" when the key is missing
	Want string // what the accessor reads, e.g. "int (NUMBER)"
	Err  error
}

func (e *ConfigError) Error() string {
	switch {
	case errors.Is(e.Err, ErrNoSuchKey):
		return fmt.Sprintf("config %q: %v", e.Key, e.Err)
	case errors.Is(e.Err, ErrWrongType):
		return fmt.Sprintf("config %q: dataType %s cannot be read as %s: %v", e.Key, e.Type, e.Want, e.Err)
	default:
		return fmt.Sprintf("config %q (%s) as %s: %v", e.Key, e.Type, e.Want, e.Err)
	}
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *ConfigError) Unwrap() error { return e.Err }

// ConnectionState is what the cache holds of a connection or credential
// variable: its status (ACTIVE, ERROR, FAILED, PENDING, or "" when Prismatic
// reported none) and its refresh times (zero when unknown). The inputs
// themselves are secrets and are never cached.
type ConnectionState struct {
	Status                  string
	RefreshAt               time.Time
	LastSuccessfulRefreshAt time.Time
}

// isText reports whether a dataType's value is plain text.
func isText(t string) bool {
	switch t {
	case "STRING", "PICKLIST", "CODE", "DATE", "TIMESTAMP", "SCHEDULE":
		return true
	}
	return false
}

// isKnown reports whether this version knows the dataType. A type added to
// Prismatic later is readable with String and JSON.
func isKnown(t string) bool {
	switch t {
	case "BOOLEAN", "NUMBER", "JSONFORM", "OBJECTSELECTION", "OBJECTFIELDMAP", TypeConnection, TypeCredential:
		return true
	}
	return isText(t)
}

// String returns the value of a text variable: dataType STRING, PICKLIST,
// CODE, DATE, TIMESTAMP, SCHEDULE, or a type this version does not know.
// Collections (VALUELIST, KEYVALUELIST) hold JSON text; read them with JSON.
func (e Entry) String(key string) (string, error) {
	const want = "string (STRING, PICKLIST, CODE, DATE, TIMESTAMP, SCHEDULE)"
	return e.value(key, want, func(t string) bool { return isText(t) || !isKnown(t) })
}

// Bool returns the value of a BOOLEAN variable ("true"/"false"; anything
// strconv.ParseBool accepts).
func (e Entry) Bool(key string) (bool, error) {
	const want = "bool (BOOLEAN)"
	v, err := e.value(key, want, func(t string) bool { return t == "BOOLEAN" })
	if err != nil {
		return false, err
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &ConfigError{Key: key, Type: "BOOLEAN", Want: want, Err: err}
	}
	return b, nil
}

// Int returns the value of a NUMBER variable as an int64. A value with a
// fraction ("1.5") is an error; an integral one written as a float ("15.0",
// "1e3") is accepted.
func (e Entry) Int(key string) (int64, error) {
	const want = "int (NUMBER)"
	v, err := e.value(key, want, func(t string) bool { return t == "NUMBER" })
	if err != nil {
		return 0, err
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err == nil && (f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64) {
		err = fmt.Errorf("%q is not a whole number in the int64 range", v)
	}
	if err != nil {
		return 0, &ConfigError{Key: key, Type: "NUMBER", Want: want, Err: err}
	}
	return int64(f), nil
}

// Float returns the value of a NUMBER variable as a float64.
func (e Entry) Float(key string) (float64, error) {
	const want = "float (NUMBER)"
	v, err := e.value(key, want, func(t string) bool { return t == "NUMBER" })
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, &ConfigError{Key: key, Type: "NUMBER", Want: want, Err: err}
	}
	return f, nil
}

// JSON decodes the value of a variable into dst with encoding/json. It reads
// every dataType except CONNECTION and CREDENTIAL (whose value is never
// cached): the JSON types (JSONFORM, OBJECTSELECTION, OBJECTFIELDMAP) and
// collections of any type hold JSON text; a plain text value that is not JSON
// is a decoding error naming the key.
func (e Entry) JSON(key string, dst any) error {
	const want = "JSON"
	v, err := e.value(key, want, func(t string) bool { return t != TypeConnection && t != TypeCredential })
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(v), dst); err != nil {
		return &ConfigError{Key: key, Type: e.Doc.Config[key].Type, Want: want, Err: err}
	}
	return nil
}

// Connection returns the status and refresh times of a CONNECTION or
// CREDENTIAL variable.
func (e Entry) Connection(key string) (ConnectionState, error) {
	const want = "connection (CONNECTION, CREDENTIAL)"
	cv, err := e.variable(key, want)
	if err != nil {
		return ConnectionState{}, err
	}
	if cv.Type != TypeConnection && cv.Type != TypeCredential {
		return ConnectionState{}, &ConfigError{Key: key, Type: cv.Type, Want: want, Err: ErrWrongType}
	}
	s := ConnectionState{Status: cv.Status}
	if cv.RefreshAt != nil {
		s.RefreshAt = *cv.RefreshAt
	}
	if cv.LastSuccessfulRefreshAt != nil {
		s.LastSuccessfulRefreshAt = *cv.LastSuccessfulRefreshAt
	}
	return s, nil
}

// Age is how long ago the fetch that wrote the document began (time since
// FetchedAt), or 0 when the entry has no fetch time.
func (e Entry) Age() time.Duration {
	if e.FetchedAt.IsZero() {
		return 0
	}
	return time.Since(e.FetchedAt)
}

func (e Entry) variable(key, want string) (ConfigValue, error) {
	if e.Doc == nil {
		return ConfigValue{}, &ConfigError{Key: key, Want: want, Err: ErrNoSuchKey}
	}
	cv, ok := e.Doc.Config[key]
	if !ok {
		return ConfigValue{}, &ConfigError{Key: key, Want: want, Err: ErrNoSuchKey}
	}
	return cv, nil
}

// value returns the non-null value of variable key if accept takes its type.
func (e Entry) value(key, want string, accept func(dataType string) bool) (string, error) {
	cv, err := e.variable(key, want)
	if err != nil {
		return "", err
	}
	if !accept(cv.Type) {
		return "", &ConfigError{Key: key, Type: cv.Type, Want: want, Err: ErrWrongType}
	}
	if cv.Value == nil {
		return "", &ConfigError{Key: key, Type: cv.Type, Want: want, Err: ErrNullValue}
	}
	return *cv.Value, nil
}
