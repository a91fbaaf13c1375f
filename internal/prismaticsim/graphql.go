package prismaticsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/prismcache/prismcache/internal/prismaticsim/gqlserver"
)

// IntrospectionHeader is the request header that allows introspection
// (__schema, __type) when its value is "true", as prism's schema codegen
// sends it to Prismatic. Without it, introspection fields are a field error.
const IntrospectionHeader = "Prismatic-Docs-Introspection"

// TooComplexCode is the extensions.code of the error that refuses a request
// asking for a larger page than Faults.PageSizeLimit allows.
const TooComplexCode = "QUERY_TOO_COMPLEX"

// queryCacheSize is how many parsed and validated documents the executor
// keeps, by query text: the daemon sends a handful of distinct documents.
const queryCacheSize = 256

// graphqlRequest is the body of a GraphQL-over-HTTP POST.
type graphqlRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
}

// graphqlResponse is what /api answers: data is absent (not null) when the
// request failed before execution, as the GraphQL-over-HTTP convention has
// it for a request error.
type graphqlResponse struct {
	Errors gqlerror.List
	Data   []byte // JSON written by gqlgen; nil is absent
}

// encode writes the response as JSON. The data is copied as gqlgen wrote it
// rather than through encoding/json, which would scan it once more.
func (r graphqlResponse) encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(r.Errors) > 0 {
		errs, err := json.Marshal(r.Errors)
		if err != nil {
			return nil, err
		}
		b.WriteString(`"errors":`)
		b.Write(errs)
	}
	if r.Data != nil {
		if len(r.Errors) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"data":`)
		b.Write(r.Data)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// newExecutor serves schema with the generated server and our resolvers.
func (s *Sim) newExecutor(schema *ast.Schema) *executor.Executor {
	ex := executor.New(gqlserver.NewExecutableSchema(gqlserver.Config{Schema: schema, Resolvers: resolver{s}}))
	ex.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
	ex.SetRecoverFunc(func(_ context.Context, p any) error {
		s.log.Error("graphql resolver panicked", "panic", p, "stack", string(debug.Stack()))
		return errors.New("internal system error")
	})
	return ex
}

// execute answers one GraphQL request and names its operation. It holds the
// model's read lock for the whole request, so each answer is one consistent
// snapshot, as a database transaction would give.
func (s *Sim) execute(ctx context.Context, req graphqlRequest, introspection bool) (graphqlResponse, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ctx = graphql.StartOperationTrace(ctx)
	opCtx, errs := s.gql.CreateOperationContext(ctx, &graphql.RawParams{
		Query: req.Query, OperationName: req.OperationName, Variables: req.Variables,
	})
	op := req.OperationName
	if opCtx.Operation != nil {
		op = opCtx.Operation.Name
	}
	if op == "" {
		op = "(anonymous)"
	}
	if errs != nil {
		return graphqlResponse{Errors: errs}, op
	}
	opCtx.DisableIntrospection = !introspection
	if err := s.refuseLargePage(opCtx); err != nil {
		return graphqlResponse{Errors: gqlerror.List{err}}, op
	}
	handler, ctx := s.gql.DispatchOperation(ctx, opCtx)
	resp := handler(ctx)
	if resp == nil { // the request's context ended
		return graphqlResponse{Errors: gqlerror.List{gqlerror.Errorf("request cancelled")}}, op
	}
	return graphqlResponse{Errors: resp.Errors, Data: resp.Data}, op
}

// refuseLargePage is the PageSizeLimit fault: an error for an operation
// asking for more records in one page than the limit, nil otherwise.
func (s *Sim) refuseLargePage(opCtx *graphql.OperationContext) *gqlerror.Error {
	limit := s.Faults().PageSizeLimit
	if limit <= 0 {
		return nil
	}
	field, n := largestPage(opCtx.Operation.SelectionSet, opCtx.Variables)
	if n <= limit {
		return nil
	}
	s.stats.add(func(st *Stats) { st.TooComplex++ })
	err := gqlerror.Errorf("query is too complex: requesting %d records on the `%s` connection exceeds the limit of %d records (injected by prismaticsim)", n, field, limit)
	err.Extensions = map[string]any{"code": TooComplexCode}
	return err
}

// largestPage finds, among the fields of a selection set and their
// fragments, the one asking for the most records: its first or last, or
// MaxPageSize for a connection field given neither (its default page).
func largestPage(set ast.SelectionSet, vars map[string]any) (field string, n int) {
	for _, sel := range set {
		var sub ast.SelectionSet
		switch sel := sel.(type) {
		case *ast.Field:
			args := sel.ArgumentMap(vars)
			size, sized := 0, false
			for _, name := range []string{"first", "last"} {
				if v, ok := asInt(args[name]); ok {
					size, sized = max(size, v), true
				}
			}
			if !sized && sel.Definition != nil && sel.Definition.Arguments.ForName("first") != nil {
				size = MaxPageSize
			}
			if size > n {
				field, n = sel.Name, size
			}
			sub = sel.SelectionSet
		case *ast.InlineFragment:
			sub = sel.SelectionSet
		case *ast.FragmentSpread:
			if sel.Definition != nil {
				sub = sel.Definition.SelectionSet
			}
		}
		if f, m := largestPage(sub, vars); m > n {
			field, n = f, m
		}
	}
	return field, n
}

// asInt reads an Int argument as literals and coerced variables carry it.
func asInt(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case int64:
		return int(v), true
	case float64:
		return int(v), true
	case json.Number:
		n, err := v.Int64()
		return int(n), err == nil
	}
	return 0, false
}
