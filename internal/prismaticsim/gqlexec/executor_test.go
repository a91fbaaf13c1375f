package gqlexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

const testSchema = `
enum Color { RED GREEN }
input Order { field: String!  dir: Color = RED }
scalar Stamp
type Query {
  hello(name: String = "world"): String!
  item(id: ID!): Item
  items(order: [Order]): [Item!]!
  echo(n: Int, f: Float, b: Boolean, ids: [ID], o: Order, c: Color, s: Stamp): String
  color: Color
  badColor: Color
  stamp: Stamp
  fails: String
  failsNonNull: Item
  unresolved: String
}
type Item {
  id: ID!
  name: String!
  broken: String!
  tags: [String!]
  child: Item
}
`

type item struct {
	id, name string
	tags     []string
}

func newTestExecutor(t *testing.T) *Executor {
	t.Helper()
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "test.graphql", Input: testSchema})
	if err != nil {
		t.Fatalf("load schema: %v", err)
	}
	items := map[string]*item{
		"1": {id: "1", name: "one", tags: []string{"a", "b"}},
		"2": {id: "2", name: "two"},
	}
	res := Resolvers{
		"Query": {
			"hello": func(_ context.Context, p Params) (any, error) {
				name, _ := p.Args.String("name")
				return "hello " + name, nil
			},
			"item": func(_ context.Context, p Params) (any, error) {
				id, _ := p.Args.String("id")
				return items[id], nil // a typed nil pointer for an unknown id
			},
			"items": func(_ context.Context, p Params) (any, error) {
				order, _ := p.Args.List("order")
				out := []*item{items["1"], items["2"]}
				if len(order) > 0 && order[0].(map[string]any)["dir"] == "GREEN" {
					out[0], out[1] = out[1], out[0]
				}
				return out, nil
			},
			"echo": func(_ context.Context, p Params) (any, error) {
				keys := make([]string, 0, len(p.Args))
				for k := range p.Args {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				var b strings.Builder
				for _, k := range keys {
					fmt.Fprintf(&b, "%s=%#v;", k, p.Args[k])
				}
				return b.String(), nil
			},
			"color":        func(context.Context, Params) (any, error) { return "GREEN", nil },
			"badColor":     func(context.Context, Params) (any, error) { return "BLUE", nil },
			"stamp":        func(context.Context, Params) (any, error) { return 42, nil },
			"fails":        func(context.Context, Params) (any, error) { return nil, errors.New("boom") },
			"failsNonNull": func(context.Context, Params) (any, error) { return items["1"], nil },
		},
		"Item": {
			"id":     func(_ context.Context, p Params) (any, error) { return p.Source.(*item).id, nil },
			"name":   func(_ context.Context, p Params) (any, error) { return p.Source.(*item).name, nil },
			"tags":   func(_ context.Context, p Params) (any, error) { return p.Source.(*item).tags, nil },
			"broken": func(context.Context, Params) (any, error) { return nil, errors.New("broken on purpose") },
			"child":  func(_ context.Context, p Params) (any, error) { return items["2"], nil },
		},
	}
	e, err := New(schema, Config{
		Resolvers: res,
		Scalars: map[string]Serializer{"Stamp": func(v any) (any, error) {
			return fmt.Sprintf("T%v", v), nil
		}},
	})
	if err != nil {
		t.Fatalf("new executor: %v", err)
	}
	return e
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func TestExecute(t *testing.T) {
	e := newTestExecutor(t)
	tests := []struct {
		name  string
		query string
		op    string
		vars  map[string]any
		want  string
	}{
		{
			name:  "default argument and typename",
			query: `{ hello __typename }`,
			want:  `{"data":{"hello":"hello world","__typename":"Query"}}`,
		},
		{
			name:  "aliases keep selection order",
			query: `{ b: item(id: "2") { name } a: item(id: "1") { id name } }`,
			want:  `{"data":{"b":{"name":"two"},"a":{"id":"1","name":"one"}}}`,
		},
		{
			name:  "unknown id is null",
			query: `{ item(id: "9") { id } }`,
			want:  `{"data":{"item":null}}`,
		},
		{
			name:  "named and inline fragments merge",
			query: `query { item(id: "1") { ...F ... on Item { tags } id } } fragment F on Item { id name }`,
			want:  `{"data":{"item":{"id":"1","name":"one","tags":["a","b"]}}}`,
		},
		{
			name:  "variables with defaults",
			query: `query Q($id: ID! = "2", $n: String) { item(id: $id) { name } hello(name: $n) }`,
			vars:  map[string]any{"n": "you"},
			want:  `{"data":{"item":{"name":"two"},"hello":"hello you"}}`,
		},
		{
			name:  "absent variable falls back to the argument default",
			query: `query Q($n: String) { hello(name: $n) }`,
			want:  `{"data":{"hello":"hello world"}}`,
		},
		{
			name:  "skip and include",
			query: `query Q($yes: Boolean!) { a: hello @skip(if: $yes) b: hello @include(if: $yes) c: hello @include(if: false) }`,
			vars:  map[string]any{"yes": true},
			want:  `{"data":{"b":"hello world"}}`,
		},
		{
			name:  "single object given for a list argument, enum literal",
			query: `{ items(order: {field: "x", dir: GREEN}) { id } }`,
			want:  `{"data":{"items":[{"id":"2"},{"id":"1"}]}}`,
		},
		{
			name:  "single object in a variable for a list argument",
			query: `query Q($o: [Order]) { items(order: $o) { id } }`,
			vars:  map[string]any{"o": map[string]any{"field": "x", "dir": "GREEN"}},
			want:  `{"data":{"items":[{"id":"2"},{"id":"1"}]}}`,
		},
		{
			name:  "literal coercion",
			query: `{ echo(n: 3, f: 2, b: true, ids: "x", o: {field: "f"}, c: RED, s: "raw") }`,
			want:  `{"data":{"echo":"b=true;c=\"RED\";f=2;ids=[]interface {}{\"x\"};n=3;o=map[string]interface {}{\"dir\":\"RED\", \"field\":\"f\"};s=\"raw\";"}}`,
		},
		{
			name:  "variable coercion from JSON numbers",
			query: `query Q($n: Int, $f: Float, $ids: [ID]) { echo(n: $n, f: $f, ids: $ids) }`,
			vars:  map[string]any{"n": json.Number("7"), "f": float64(1), "ids": []any{"a"}},
			want:  `{"data":{"echo":"f=1;ids=[]interface {}{\"a\"};n=7;"}}`,
		},
		{
			name:  "explicit null argument is present",
			query: `{ echo(n: null) }`,
			want:  `{"data":{"echo":"n=<nil>;"}}`,
		},
		{
			name:  "enum and custom scalar serialisation",
			query: `{ color stamp }`,
			want:  `{"data":{"color":"GREEN","stamp":"T42"}}`,
		},
		{
			name:  "invalid enum value is a field error",
			query: `{ badColor hello }`,
			want:  `{"errors":[{"message":"Query.badColor: not a value of the enum Color: BLUE","path":["badColor"],"locations":[{"line":1,"column":3}]}],"data":{"badColor":null,"hello":"hello world"}}`,
		},
		{
			name:  "resolver error on a nullable field",
			query: `{ fails hello }`,
			want:  `{"errors":[{"message":"boom","path":["fails"],"locations":[{"line":1,"column":3}]}],"data":{"fails":null,"hello":"hello world"}}`,
		},
		{
			name:  "error on a non-null field nulls the nearest nullable parent",
			query: `{ failsNonNull { id broken } hello }`,
			want:  `{"errors":[{"message":"broken on purpose","path":["failsNonNull","broken"],"locations":[{"line":1,"column":21}]}],"data":{"failsNonNull":null,"hello":"hello world"}}`,
		},
		{
			name:  "null in a non-null list item nulls up to data",
			query: `{ items { broken } }`,
			want:  `{"errors":[{"message":"broken on purpose","path":["items",0,"broken"],"locations":[{"line":1,"column":11}]}],"data":null}`,
		},
		{
			name:  "field without resolver is null",
			query: `{ unresolved }`,
			want:  `{"data":{"unresolved":null}}`,
		},
		{
			name:  "operation picked by name",
			query: `query A { hello } query B { color }`,
			op:    "B",
			want:  `{"data":{"color":"GREEN"}}`,
		},
		{
			name:  "nested objects",
			query: `{ item(id: "1") { child { child { name } } } }`,
			want:  `{"data":{"item":{"child":{"child":{"name":"two"}}}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.Execute(context.Background(), Request{Query: tt.query, OperationName: tt.op, Variables: tt.vars})
			if got := string(mustMarshal(t, resp)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestExecuteRequestErrors(t *testing.T) {
	e := newTestExecutor(t)
	tests := []struct {
		name, query, op string
		vars            map[string]any
		wantMsg         string
	}{
		{name: "unknown field", query: `{ nope }`, wantMsg: `Cannot query field "nope" on type "Query".`},
		{name: "bad argument", query: `{ item(key: "1") { id } }`, wantMsg: `Unknown argument "key"`},
		{name: "syntax", query: `{ item(`, wantMsg: `Expected Name`},
		{name: "missing variable", query: `query Q($id: ID!) { item(id: $id) { id } }`, wantMsg: "must be defined"},
		{name: "wrong variable type", query: `query Q($n: Int) { echo(n: $n) }`, vars: map[string]any{"n": "x"}, wantMsg: "variable n"},
		{name: "bad enum variable", query: `query Q($c: Color) { echo(c: $c) }`, vars: map[string]any{"c": "BLUE"}, wantMsg: "BLUE is not a valid Color"},
		{name: "several operations without a name", query: `query A { hello } query B { hello }`, wantMsg: "operationName is required"},
		{name: "unknown operation", query: `query A { hello }`, op: "Z", wantMsg: "unknown operation"},
		{name: "mutation on a query-only schema", query: `mutation { hello }`, wantMsg: "mutation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.Execute(context.Background(), Request{Query: tt.query, OperationName: tt.op, Variables: tt.vars})
			if resp.HasData {
				t.Fatalf("request error must not have data: %s", mustJSON(t, resp))
			}
			if len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0].Message, tt.wantMsg) {
				t.Fatalf("errors = %s, want a message containing %q", mustJSON(t, resp.Errors), tt.wantMsg)
			}
			if got := mustJSON(t, resp); strings.Contains(got, `"data"`) {
				t.Errorf("response has a data key: %s", got)
			}
		})
	}
}

func TestNewRejectsUnknownResolver(t *testing.T) {
	schema, err := gqlparser.LoadSchema(&ast.Source{Input: testSchema})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []Resolvers{
		{"Nope": {"x": nil}},
		{"Item": {"nope": nil}},
	} {
		if _, err := New(schema, Config{Resolvers: res}); err == nil {
			t.Errorf("New(%v) = nil error, want one", res)
		}
	}
}

func TestUnresolved(t *testing.T) {
	e := newTestExecutor(t)
	got := strings.Join(e.Unresolved(), ",")
	if got != "Query.unresolved" {
		t.Errorf("Unresolved() = %s, want Query.unresolved", got)
	}
}

func TestResolverPanicIsFieldError(t *testing.T) {
	schema, err := gqlparser.LoadSchema(&ast.Source{Input: `type Query { a: String b: String }`})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(schema, Config{Resolvers: Resolvers{"Query": {
		"a": func(context.Context, Params) (any, error) { panic("oops") },
		"b": func(context.Context, Params) (any, error) { return "ok", nil },
	}}})
	if err != nil {
		t.Fatal(err)
	}
	got := mustJSON(t, e.Execute(context.Background(), Request{Query: "{a b}"}))
	if !strings.Contains(got, `"data":{"a":null,"b":"ok"}`) || !strings.Contains(got, "oops") {
		t.Errorf("got %s", got)
	}
}

func mustMarshal(t *testing.T, r *Response) []byte {
	t.Helper()
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatalf("marshal response: %v", err)
	}
	return b
}
