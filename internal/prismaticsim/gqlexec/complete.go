package gqlexec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// execution is the state of one request. Fields run one at a time, so it
// needs no lock.
type execution struct {
	e    *Executor
	ctx  context.Context
	doc  *ast.QueryDocument
	vars map[string]any
	errs gqlerror.List
}

func (x *execution) fieldError(f *ast.Field, path ast.Path, msg string) {
	err := &gqlerror.Error{Message: msg, Path: slices.Clone(path)}
	if f != nil && f.Position != nil {
		err.Locations = []gqlerror.Location{{Line: f.Position.Line, Column: f.Position.Column}}
	}
	x.errs = append(x.errs, err)
}

// executeSelectionSet resolves the selection set on one object. The boolean
// is false when a non-null field failed, so the object itself is null and
// the null must propagate.
func (x *execution) executeSelectionSet(objType *ast.Definition, source any, set ast.SelectionSet, path ast.Path) (*Object, bool) {
	groups, err := x.collectFields(objType, set, nil, map[string]bool{})
	if err != nil {
		x.fieldError(nil, path, err.Error())
		return nil, false
	}
	return x.executeGroups(objType, source, groups, path)
}

func (x *execution) executeGroups(objType *ast.Definition, source any, groups []fieldGroup, path ast.Path) (*Object, bool) {
	obj := &Object{Fields: make([]Field, 0, len(groups))}
	for _, g := range groups {
		if err := x.ctx.Err(); err != nil {
			x.fieldError(g.fields[0], path, fmt.Sprintf("execution stopped: %v", err))
			return nil, false
		}
		fieldPath := append(slices.Clip(path), ast.PathName(g.key))
		v, ok := x.executeField(objType, source, g.fields, fieldPath)
		if !ok {
			return nil, false
		}
		obj.set(g.key, v)
	}
	return obj, true
}

// executeField resolves and completes one response key. The boolean is false
// when the field is non-null and its value is null.
func (x *execution) executeField(objType *ast.Definition, source any, fields []*ast.Field, path ast.Path) (any, bool) {
	f := fields[0]
	if f.Name == "__typename" {
		return objType.Name, true
	}
	def := objType.Fields.ForName(f.Name)
	if def == nil {
		// __schema and __type pass validation but are not implemented.
		x.fieldError(f, path, fmt.Sprintf("field %s.%s is not supported", objType.Name, f.Name))
		return nil, true
	}
	args, err := x.coerceArguments(def.Arguments, f.Arguments)
	if err != nil {
		x.fieldError(f, path, err.Error())
		return nil, !def.Type.NonNull
	}
	v, err := x.resolve(objType, def, source, args, f, path)
	if err != nil {
		x.fieldError(f, path, err.Error())
		return nil, !def.Type.NonNull
	}
	return x.completeValue(objType, def.Type, fields, v, path)
}

func (x *execution) resolve(objType *ast.Definition, def *ast.FieldDefinition, source any, args Args, f *ast.Field, path ast.Path) (v any, err error) {
	r := x.e.cfg.Resolvers[objType.Name][def.Name]
	if r == nil {
		if m, ok := source.(map[string]any); ok {
			return m[def.Name], nil
		}
		return nil, nil
	}
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("internal error resolving %s.%s: %v", objType.Name, def.Name, p)
		}
	}()
	return r(x.ctx, Params{Source: source, Args: args, Field: f, Path: path})
}

// completeValue turns a resolved value into its response value. The boolean
// is false when the null must propagate to the parent: typ is non-null and
// the value (or a non-null part of it) is null.
func (x *execution) completeValue(parent *ast.Definition, typ *ast.Type, fields []*ast.Field, v any, path ast.Path) (any, bool) {
	if typ.NonNull {
		inner := *typ
		inner.NonNull = false
		r, ok := x.completeNullable(parent, &inner, fields, v, path)
		if !ok {
			return nil, false
		}
		if r == nil {
			x.fieldError(fields[0], path, fmt.Sprintf("Cannot return null for non-nullable field %s.%s.", parent.Name, fields[0].Name))
			return nil, false
		}
		return r, true
	}
	r, ok := x.completeNullable(parent, typ, fields, v, path)
	if !ok {
		return nil, true
	}
	return r, true
}

// completeNullable completes a value for a nullable type. The boolean is
// false when an error was already reported for this position (so a
// non-null wrapper must propagate without adding another).
func (x *execution) completeNullable(parent *ast.Definition, typ *ast.Type, fields []*ast.Field, v any, path ast.Path) (any, bool) {
	if isNil(v) {
		return nil, true
	}
	if typ.Elem != nil {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			x.fieldError(fields[0], path, fmt.Sprintf("resolver for %s.%s returned %T, not a list", parent.Name, fields[0].Name, v))
			return nil, false
		}
		out := make([]any, rv.Len())
		for i := range rv.Len() {
			item, ok := x.completeValue(parent, typ.Elem, fields, rv.Index(i).Interface(), append(slices.Clip(path), ast.PathIndex(i)))
			if !ok {
				return nil, false
			}
			out[i] = item
		}
		return out, true
	}
	def := x.e.schema.Types[typ.NamedType]
	if def == nil {
		x.fieldError(fields[0], path, fmt.Sprintf("unknown type %s", typ.NamedType))
		return nil, false
	}
	switch def.Kind {
	case ast.Scalar, ast.Enum:
		r, err := x.serialize(def, v)
		if err != nil {
			x.fieldError(fields[0], path, fmt.Sprintf("%s.%s: %v", parent.Name, fields[0].Name, err))
			return nil, false
		}
		return r, true
	case ast.Object:
		return x.completeObject(def, fields, v, path)
	case ast.Interface, ast.Union:
		if x.e.cfg.ResolveType == nil {
			x.fieldError(fields[0], path, fmt.Sprintf("cannot resolve the type of %s", def.Name))
			return nil, false
		}
		obj := x.e.schema.Types[x.e.cfg.ResolveType(v)]
		if obj == nil || obj.Kind != ast.Object {
			x.fieldError(fields[0], path, fmt.Sprintf("cannot resolve the type of %s", def.Name))
			return nil, false
		}
		return x.completeObject(obj, fields, v, path)
	}
	x.fieldError(fields[0], path, fmt.Sprintf("type %s cannot be an output", def.Name))
	return nil, false
}

func (x *execution) completeObject(def *ast.Definition, fields []*ast.Field, v any, path ast.Path) (any, bool) {
	groups, err := x.collectSubfields(def, fields)
	if err != nil {
		x.fieldError(fields[0], path, err.Error())
		return nil, false
	}
	obj, ok := x.executeGroups(def, v, groups, path)
	if !ok {
		return nil, false
	}
	return obj, true
}

var errNotEnum = errors.New("not a value of the enum")

// serialize renders a leaf value: built-in scalars strictly, enums as one of
// their names, custom scalars through Config.Scalars.
func (x *execution) serialize(def *ast.Definition, v any) (any, error) {
	if def.Kind == ast.Enum {
		s, ok := asString(v)
		if !ok || def.EnumValues.ForName(s) == nil {
			return nil, fmt.Errorf("%w %s: %v", errNotEnum, def.Name, v)
		}
		return s, nil
	}
	switch def.Name {
	case "Int":
		n, ok := asInt(v)
		if !ok || n > math.MaxInt32 || n < math.MinInt32 {
			return nil, fmt.Errorf("cannot represent %v (%T) as Int", v, v)
		}
		return n, nil
	case "Float":
		switch f := v.(type) {
		case float64:
			return f, nil
		case float32:
			return float64(f), nil
		}
		if n, ok := asInt(v); ok {
			return float64(n), nil
		}
		return nil, fmt.Errorf("cannot represent %T as Float", v)
	case "String", "ID":
		if s, ok := asString(v); ok {
			return s, nil
		}
		return nil, fmt.Errorf("cannot represent %T as %s", v, def.Name)
	case "Boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("cannot represent %T as Boolean", v)
	}
	if s := x.e.cfg.Scalars[def.Name]; s != nil {
		return s(v)
	}
	return v, nil
}

func asString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case fmt.Stringer:
		return s.String(), true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.String {
		return rv.String(), true
	}
	return "", false
}

func asInt(v any) (int64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() > math.MaxInt64 {
			return 0, false
		}
		return int64(rv.Uint()), true
	}
	return 0, false
}

// isNil reports whether v is nil or a nil pointer, map, slice, interface or
// func, all of which complete to null.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}
