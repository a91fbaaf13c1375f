package gqlexec

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"
)

// Resolver computes one field's value. Its result is completed according to
// the field's type: a Go value for a scalar or enum (see Serializer), any
// value for an object (it becomes the Source of that object's resolvers), a
// slice for a list. A nil result (including a typed nil pointer, map or
// slice) is null. An error becomes a field error at the field's path.
type Resolver func(ctx context.Context, p Params) (any, error)

// Params is what a Resolver is given; it is valid only during the call.
type Params struct {
	// Source is the value the parent field resolved to (nil for root fields).
	Source any
	// Args are the field's coerced arguments.
	Args Args
	// Field is the first field node of the merged group, for resolvers that
	// want to look at the selection.
	Field *ast.Field
	// Path is the response path of the field.
	Path ast.Path
}

// Resolvers maps an object type name and a field name to its resolver.
type Resolvers map[string]map[string]Resolver

// Serializer turns a resolver's value for a custom scalar into the value to
// put in the JSON response.
type Serializer func(v any) (any, error)

// Config configures an Executor. The zero value resolves every field to null.
type Config struct {
	// Resolvers resolve fields by type and field name. A field without a
	// resolver reads the key of the same name when its source is a
	// map[string]any, and is null otherwise.
	Resolvers Resolvers
	// Scalars serialize custom scalars by name. A custom scalar without a
	// serializer is passed through as the resolver returned it.
	Scalars map[string]Serializer
	// ResolveType names the object type of a value returned for an interface
	// or union field. Nil makes such fields an error.
	ResolveType func(v any) string
	// CacheSize is how many parsed and validated documents are kept, by query
	// text. Zero means 256; negative disables the cache.
	CacheSize int
}

// Request is one GraphQL request, as sent in a GraphQL-over-HTTP POST body.
// Variables may hold json.Number values (a decoder with UseNumber). The zero
// value is an empty document, a request error.
type Request struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
}

// Executor executes requests against one schema. It is safe for concurrent
// use; resolvers are called one at a time within a request, but requests may
// run concurrently, so resolvers must protect shared state themselves.
type Executor struct {
	schema    *ast.Schema
	cfg       Config
	cacheSize int

	mu    sync.Mutex
	cache map[string]*ast.QueryDocument
}

// New returns an Executor for schema. It fails when a resolver names a type or
// field the schema does not have, so a typo cannot silently leave a field
// unresolved.
func New(schema *ast.Schema, cfg Config) (*Executor, error) {
	if schema == nil {
		return nil, errors.New("gqlexec: nil schema")
	}
	for typeName, fields := range cfg.Resolvers {
		def := schema.Types[typeName]
		if def == nil || def.Kind != ast.Object {
			return nil, fmt.Errorf("gqlexec: resolvers for %s: no such object type", typeName)
		}
		for name := range fields {
			if def.Fields.ForName(name) == nil {
				return nil, fmt.Errorf("gqlexec: resolver %s.%s: no such field", typeName, name)
			}
		}
	}
	size := cfg.CacheSize
	if size == 0 {
		size = 256
	}
	return &Executor{schema: schema, cfg: cfg, cacheSize: size, cache: map[string]*ast.QueryDocument{}}, nil
}

// Unresolved lists, sorted, the "Type.field" pairs of the schema's object
// types that have no resolver. Tests use it to prove a model covers a schema.
func (e *Executor) Unresolved() []string {
	var out []string
	for name, def := range e.schema.Types {
		if def.Kind != ast.Object || def.BuiltIn || strings.HasPrefix(name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if e.cfg.Resolvers[name][f.Name] == nil {
				out = append(out, name+"."+f.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Validate parses and validates a query document, as Execute does first.
func (e *Executor) Validate(query string) (*ast.QueryDocument, gqlerror.List) {
	if e.cacheSize > 0 {
		e.mu.Lock()
		doc := e.cache[query]
		e.mu.Unlock()
		if doc != nil {
			return doc, nil
		}
	}
	doc, errs := gqlparser.LoadQueryWithRules(e.schema, query, nil)
	if len(errs) > 0 {
		return nil, errs
	}
	if e.cacheSize > 0 {
		e.mu.Lock()
		if len(e.cache) >= e.cacheSize {
			clear(e.cache)
		}
		e.cache[query] = doc
		e.mu.Unlock()
	}
	return doc, nil
}

// Execute validates and runs one request. Request errors (syntax, validation,
// unknown operation, bad variables) give a response without data; field
// errors give data with nulls and an error per failed field.
func (e *Executor) Execute(ctx context.Context, req Request) *Response {
	doc, errs := e.Validate(req.Query)
	if len(errs) > 0 {
		return &Response{Errors: errs}
	}
	op, err := pickOperation(doc, req.OperationName)
	if err != nil {
		return &Response{Errors: gqlerror.List{err}}
	}
	root := e.rootType(op.Operation)
	if root == nil {
		return &Response{Errors: gqlerror.List{gqlerror.ErrorPosf(op.Position, "schema has no %s type", op.Operation)}}
	}
	vars, verr := variableValues(e.schema, op, req.Variables)
	if verr != nil {
		return &Response{Errors: gqlerror.List{verr}}
	}
	x := &execution{e: e, ctx: ctx, doc: doc, vars: vars}
	data, ok := x.executeSelectionSet(root, nil, op.SelectionSet, nil)
	resp := &Response{HasData: true, Errors: x.errs}
	if ok {
		resp.Data = data
	}
	return resp
}

func (e *Executor) rootType(op ast.Operation) *ast.Definition {
	switch op {
	case ast.Query, "":
		return e.schema.Query
	case ast.Mutation:
		return e.schema.Mutation
	case ast.Subscription:
		return e.schema.Subscription
	}
	return nil
}

func pickOperation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, *gqlerror.Error) {
	if name != "" {
		op := doc.Operations.ForName(name)
		if op == nil {
			return nil, gqlerror.Errorf("unknown operation named %q", name)
		}
		return op, nil
	}
	switch len(doc.Operations) {
	case 0:
		return nil, gqlerror.Errorf("no operation in the document")
	case 1:
		return doc.Operations[0], nil
	}
	return nil, gqlerror.Errorf("operationName is required when the document has several operations")
}

// variableValues coerces the request's variables with gqlparser, turning its
// errors (and any panic on odd input) into one request error.
func variableValues(schema *ast.Schema, op *ast.OperationDefinition, given map[string]any) (vars map[string]any, gerr *gqlerror.Error) {
	defer func() {
		if r := recover(); r != nil {
			vars, gerr = nil, gqlerror.ErrorPosf(op.Position, "invalid variables: %v", r)
		}
	}()
	if given == nil {
		given = map[string]any{}
	}
	vars, err := validator.VariableValues(schema, op, given)
	if err == nil {
		return vars, nil
	}
	var ge *gqlerror.Error
	if errors.As(err, &ge) {
		msg := ge.Message
		if len(ge.Path) > 1 {
			msg = fmt.Sprintf("variable %s: %s", ge.Path[1:], ge.Message)
		}
		return nil, gqlerror.ErrorPosf(op.Position, "%s", msg)
	}
	return nil, gqlerror.ErrorPosf(op.Position, "invalid variables: %v", err)
}

// Schema returns the schema the Executor runs against.
func (e *Executor) Schema() *ast.Schema { return e.schema }
