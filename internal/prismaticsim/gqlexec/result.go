package gqlexec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Object is one object in a response: its fields in the order the query
// selected them, which encoding/json's maps would not keep. The zero value is
// an empty object. It is not safe for concurrent mutation.
type Object struct {
	Fields []Field
}

// Field is one key of an Object.
type Field struct {
	Name  string
	Value any
}

// Get returns the value of the field named name and whether it is present.
func (o *Object) Get(name string) (any, bool) {
	for _, f := range o.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

func (o *Object) set(name string, v any) {
	o.Fields = append(o.Fields, Field{Name: name, Value: v})
}

// MarshalJSON renders the object with its keys in selection order.
func (o *Object) MarshalJSON() ([]byte, error) {
	return appendValue(nil, o)
}

// appendValue writes a completed value as JSON. Completed values are only
// objects, lists, strings, ints, floats, bools and nil, plus whatever a custom
// scalar serializer returned (written with encoding/json). Writing them
// directly avoids encoding/json re-compacting every nested object.
func appendValue(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case *Object:
		if v == nil {
			return append(buf, "null"...), nil
		}
		buf = append(buf, '{')
		for i, f := range v.Fields {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, f.Name)
			buf = append(buf, ':')
			var err error
			if buf, err = appendValue(buf, f.Value); err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
		}
		return append(buf, '}'), nil
	case []any:
		buf = append(buf, '[')
		for i, item := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendValue(buf, item); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	case string:
		return appendString(buf, v), nil
	case bool:
		return strconv.AppendBool(buf, v), nil
	case int64:
		return strconv.AppendInt(buf, v, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(v), 10), nil
	}
	b, err := marshal(v)
	if err != nil {
		return nil, err
	}
	return append(buf, b...), nil
}

// appendString writes s as a JSON string, escaping what JSON requires (and
// U+2028/U+2029, as encoding/json does) but not HTML characters.
func appendString(buf []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	buf = append(buf, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			buf = append(buf, '\\', byte(r))
		case r == '\n':
			buf = append(buf, '\\', 'n')
		case r == '\r':
			buf = append(buf, '\\', 'r')
		case r == '\t':
			buf = append(buf, '\\', 't')
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			buf = append(buf, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		case r == utf8.RuneError:
			buf = append(buf, "\\ufffd"...)
		default:
			buf = utf8.AppendRune(buf, r)
		}
	}
	return append(buf, '"')
}

// Response is the result of executing one request, shaped as the GraphQL
// specification's response map. The zero value is an empty response with no
// data key.
type Response struct {
	// Errors lists request errors (syntax, validation, variable coercion)
	// or field errors raised while executing.
	Errors gqlerror.List
	// Data is the root object, or nil when execution started but a
	// non-null root field failed (then HasData is true and data is null).
	Data *Object
	// HasData reports whether execution started. A request error (such as a
	// validation error) leaves it false, so the response has no data key.
	HasData bool
}

// MarshalJSON renders {"errors":[…],"data":…}, leaving out errors when there
// are none and data when execution never started.
func (r *Response) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	if len(r.Errors) > 0 {
		e, err := marshal(r.Errors)
		if err != nil {
			return nil, fmt.Errorf("marshal errors: %w", err)
		}
		buf.WriteString(`"errors":`)
		buf.Write(e)
	}
	if r.HasData {
		if len(r.Errors) > 0 {
			buf.WriteByte(',')
		}
		d, err := appendValue(nil, r.Data)
		if err != nil {
			return nil, fmt.Errorf("marshal data: %w", err)
		}
		buf.WriteString(`"data":`)
		buf.Write(d)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping: a GraphQL server returns
// "<" as "<" rather than "\u003c", as most servers do.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
