package gqlexec

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
)

// Args holds a field's coerced arguments. Values are Go values by GraphQL
// type: Int → int, Float → float64, String, ID, enum values and custom
// scalars given as literals → string, Boolean → bool, lists → []any, input
// objects → map[string]any. An argument given as null is present with a nil
// value; an argument that was not given and has no default is absent.
type Args map[string]any

// Has reports whether the argument was given (possibly as null) or has a
// default.
func (a Args) Has(name string) bool {
	_, ok := a[name]
	return ok
}

// String returns a String, ID or enum argument, and false when it is absent or
// null.
func (a Args) String(name string) (string, bool) {
	s, ok := a[name].(string)
	return s, ok
}

// Int returns an Int argument, and false when it is absent or null.
func (a Args) Int(name string) (int, bool) {
	n, ok := a[name].(int)
	return n, ok
}

// Bool returns a Boolean argument, and false when it is absent or null.
func (a Args) Bool(name string) (bool, bool) {
	b, ok := a[name].(bool)
	return b, ok
}

// List returns a list argument, and false when it is absent or null. A single
// value given for a list argument has already been wrapped into a list.
func (a Args) List(name string) ([]any, bool) {
	l, ok := a[name].([]any)
	return l, ok
}

// coerceArguments computes a field's (or directive's) argument values from
// the document and the coerced variables, as the specification's
// CoerceArgumentValues does.
func (x *execution) coerceArguments(defs ast.ArgumentDefinitionList, given ast.ArgumentList) (Args, error) {
	args := Args{}
	for _, def := range defs {
		arg := given.ForName(def.Name)
		if arg == nil || (arg.Value.Kind == ast.Variable && !x.hasVar(arg.Value.Raw)) {
			if def.DefaultValue != nil {
				v, err := x.coerceLiteral(def.DefaultValue, def.Type)
				if err != nil {
					return nil, fmt.Errorf("argument %s default: %w", def.Name, err)
				}
				args[def.Name] = v
			} else if def.Type.NonNull {
				return nil, fmt.Errorf("argument %q of type %s is required", def.Name, def.Type)
			}
			continue
		}
		v, err := x.coerceLiteral(arg.Value, def.Type)
		if err != nil {
			return nil, fmt.Errorf("argument %s: %w", def.Name, err)
		}
		if v == nil && def.Type.NonNull {
			return nil, fmt.Errorf("argument %q of type %s must not be null", def.Name, def.Type)
		}
		args[def.Name] = v
	}
	return args, nil
}

func (x *execution) hasVar(name string) bool {
	_, ok := x.vars[name]
	return ok
}

// coerceLiteral turns a value from the document into a Go value of typ.
func (x *execution) coerceLiteral(v *ast.Value, typ *ast.Type) (any, error) {
	if v == nil || v.Kind == ast.NullValue {
		return nil, nil
	}
	if v.Kind == ast.Variable {
		val, ok := x.vars[v.Raw]
		if !ok {
			return nil, nil
		}
		return x.coerceInput(val, typ)
	}
	if typ.Elem != nil {
		if v.Kind != ast.ListValue {
			// A single value where a list is expected is a list of one.
			item, err := x.coerceLiteral(v, typ.Elem)
			if err != nil {
				return nil, err
			}
			return []any{item}, nil
		}
		return coerceList(len(v.Children), func(i int) (any, error) { return x.coerceLiteral(v.Children[i].Value, typ.Elem) })
	}
	def := x.e.schema.Types[typ.NamedType]
	if def == nil {
		return nil, fmt.Errorf("unknown type %s", typ.NamedType)
	}
	switch def.Kind {
	case ast.InputObject:
		if v.Kind != ast.ObjectValue {
			return nil, fmt.Errorf("expected an input object %s", def.Name)
		}
		out := map[string]any{}
		for _, f := range def.Fields {
			c := v.Children.ForName(f.Name)
			if c == nil || (c.Kind == ast.Variable && !x.hasVar(c.Raw)) {
				if f.DefaultValue != nil {
					d, err := x.coerceLiteral(f.DefaultValue, f.Type)
					if err != nil {
						return nil, fmt.Errorf("field %s default: %w", f.Name, err)
					}
					out[f.Name] = d
				} else if f.Type.NonNull {
					return nil, fmt.Errorf("field %s.%s is required", def.Name, f.Name)
				}
				continue
			}
			fv, err := x.coerceLiteral(c, f.Type)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			out[f.Name] = fv
		}
		return out, nil
	case ast.Enum:
		return v.Raw, nil
	case ast.Scalar:
		switch def.Name {
		case "Int":
			n, err := strconv.ParseInt(v.Raw, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("int %q: %w", v.Raw, err)
			}
			return int(n), nil
		case "Float":
			f, err := strconv.ParseFloat(v.Raw, 64)
			if err != nil {
				return nil, fmt.Errorf("float %q: %w", v.Raw, err)
			}
			return f, nil
		case "Boolean":
			return v.Raw == "true", nil
		case "String", "ID":
			return v.Raw, nil
		default:
			val, err := v.Value(x.vars)
			if err != nil {
				return nil, fmt.Errorf("scalar %s: %w", def.Name, err)
			}
			return val, nil
		}
	}
	return nil, fmt.Errorf("type %s is not an input type", def.Name)
}

// coerceList coerces the n items of a list, item(i) giving the i-th, and
// names the item that failed.
func coerceList(n int, item func(i int) (any, error)) ([]any, error) {
	out := make([]any, 0, n)
	for i := range n {
		v, err := item(i)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// coerceInput turns a variable's value (already checked by gqlparser's
// VariableValues, but still in its JSON-decoded form) into a Go value of typ,
// the type of the place where the variable is used.
func (x *execution) coerceInput(val any, typ *ast.Type) (any, error) {
	if val == nil {
		return nil, nil
	}
	rv := reflect.ValueOf(val)
	if typ.Elem != nil {
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			item, err := x.coerceInput(val, typ.Elem)
			if err != nil {
				return nil, err
			}
			return []any{item}, nil
		}
		return coerceList(rv.Len(), func(i int) (any, error) { return x.coerceInput(rv.Index(i).Interface(), typ.Elem) })
	}
	def := x.e.schema.Types[typ.NamedType]
	if def == nil {
		return nil, fmt.Errorf("unknown type %s", typ.NamedType)
	}
	switch def.Kind {
	case ast.InputObject:
		if rv.Kind() != reflect.Map {
			return nil, fmt.Errorf("expected an input object %s, got %T", def.Name, val)
		}
		out := map[string]any{}
		for _, f := range def.Fields {
			fv := rv.MapIndex(reflect.ValueOf(f.Name))
			if !fv.IsValid() {
				if f.DefaultValue != nil {
					d, err := x.coerceLiteral(f.DefaultValue, f.Type)
					if err != nil {
						return nil, fmt.Errorf("field %s default: %w", f.Name, err)
					}
					out[f.Name] = d
				}
				continue
			}
			c, err := x.coerceInput(fv.Interface(), f.Type)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			out[f.Name] = c
		}
		return out, nil
	case ast.Enum:
		if s, ok := val.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("enum %s: got %T", def.Name, val)
	case ast.Scalar:
		return coerceScalarInput(def.Name, val)
	}
	return nil, fmt.Errorf("type %s is not an input type", def.Name)
}

func coerceScalarInput(name string, val any) (any, error) {
	switch name {
	case "Int":
		return toInt(val)
	case "Float":
		switch v := val.(type) {
		case json.Number:
			f, err := v.Float64()
			if err != nil {
				return nil, fmt.Errorf("float %q: %w", v, err)
			}
			return f, nil
		case float64:
			return v, nil
		case float32:
			return float64(v), nil
		}
		n, err := toInt(val)
		if err != nil {
			return nil, err
		}
		return float64(n.(int)), nil
	case "Boolean":
		if b, ok := val.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("boolean: got %T", val)
	case "String":
		if s, ok := val.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("string: got %T", val)
	case "ID":
		switch v := val.(type) {
		case string:
			return v, nil
		case json.Number:
			return v.String(), nil
		}
		n, err := toInt(val)
		if err != nil {
			return nil, fmt.Errorf("id: %w", err)
		}
		return strconv.Itoa(n.(int)), nil
	default:
		return val, nil
	}
}

func toInt(val any) (any, error) {
	var f float64
	switch v := val.(type) {
	case int:
		return v, nil
	case int32:
		return int(v), nil
	case int64:
		f = float64(v)
	case float64:
		f = v
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return nil, fmt.Errorf("int %q: %w", v, err)
		}
		f = float64(n)
	case string:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("int %q: %w", v, err)
		}
		return int(n), nil
	default:
		return nil, fmt.Errorf("int: got %T", val)
	}
	if f != math.Trunc(f) || f > math.MaxInt32 || f < math.MinInt32 {
		return nil, fmt.Errorf("int: %v is not a 32-bit integer", f)
	}
	return int(f), nil
}
