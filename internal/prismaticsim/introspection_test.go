package prismaticsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"

	"github.com/prismcache/prismcache"
	"github.com/prismcache/prismcache/internal/prismaticsim/gqlserver"
)

// TestGeneratedServerMatchesSchema fails when schema.graphql changed and
// `go generate ./...` was not run: the generated server would then execute
// a schema other than the one served.
func TestGeneratedServerMatchesSchema(t *testing.T) {
	generated := gqlserver.NewExecutableSchema(gqlserver.Config{}).Schema()
	want, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: prismcache.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := formatSchema(generated), formatSchema(want); got != want {
		t.Fatalf("internal/prismaticsim/gqlserver was generated from another schema: run go generate ./...\n--- generated\n%s\n--- schema.graphql\n%s", got, want)
	}
}

func formatSchema(s *ast.Schema) string {
	var b strings.Builder
	formatter.NewFormatter(&b).FormatSchema(s)
	return b.String()
}

// introspectionQuery is the full introspection query as GraphQL tools send
// it (type references nested seven levels deep).
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations isRepeatable args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } }
}`

// introspected is the part of an introspection answer the tests compare.
type introspected struct {
	Schema struct {
		QueryType struct{ Name string } `json:"queryType"`
		Types     []struct {
			Kind   string `json:"kind"`
			Name   string `json:"name"`
			Fields []struct {
				Name string  `json:"name"`
				Type typeRef `json:"type"`
				Args []struct {
					Name string  `json:"name"`
					Type typeRef `json:"type"`
				} `json:"args"`
			} `json:"fields"`
			InputFields []struct {
				Name string  `json:"name"`
				Type typeRef `json:"type"`
			} `json:"inputFields"`
			EnumValues []struct{ Name string } `json:"enumValues"`
		} `json:"types"`
	} `json:"__schema"`
}

type typeRef struct {
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	OfType *typeRef `json:"ofType"`
}

// String writes the reference as SDL does: [Instance]!.
func (r typeRef) String() string {
	switch r.Kind {
	case "NON_NULL":
		return r.OfType.String() + "!"
	case "LIST":
		return "[" + r.OfType.String() + "]"
	}
	return r.Name
}

// introspect runs the full introspection query with the header and decodes
// it.
func introspect(t *testing.T, url string) introspected {
	t.Helper()
	status, resp := postIntrospection(t, url, introspectionQuery, "true")
	if status != http.StatusOK || len(resp.Errors) > 0 {
		t.Fatalf("introspection: status %d, %s", status, resp.raw)
	}
	var out struct{ Data introspected }
	if err := json.Unmarshal(resp.raw, &out); err != nil {
		t.Fatal(err)
	}
	return out.Data
}

func postIntrospection(t *testing.T, url, query, header string) (int, gqlResponse) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/api", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+DefaultAccessToken)
	if header != "" {
		req.Header.Set(IntrospectionHeader, header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if out.raw, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.raw, &out); err != nil {
		t.Fatalf("decode %s: %v", out.raw, err)
	}
	return resp.StatusCode, out
}

// fieldTypes lists "Type.field: type" and "Type.field(arg): type" for every
// object and input type of an introspection answer, and "Enum.VALUE" for
// enums.
func (in introspected) fieldTypes() map[string]bool {
	out := map[string]bool{}
	for _, typ := range in.Schema.Types {
		if strings.HasPrefix(typ.Name, "__") {
			continue
		}
		for _, f := range typ.Fields {
			out[fmt.Sprintf("%s.%s: %s", typ.Name, f.Name, f.Type)] = true
			for _, a := range f.Args {
				out[fmt.Sprintf("%s.%s(%s): %s", typ.Name, f.Name, a.Name, a.Type)] = true
			}
		}
		for _, f := range typ.InputFields {
			out[fmt.Sprintf("%s.%s: %s", typ.Name, f.Name, f.Type)] = true
		}
		for _, v := range typ.EnumValues {
			out[typ.Name+"."+v.Name] = true
		}
	}
	return out
}

// schemaFieldTypes lists the same for a schema.
func schemaFieldTypes(s *ast.Schema) map[string]bool {
	out := map[string]bool{}
	for name, def := range s.Types {
		if def.BuiltIn {
			continue
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			out[fmt.Sprintf("%s.%s: %s", name, f.Name, f.Type)] = true
			for _, a := range f.Arguments {
				out[fmt.Sprintf("%s.%s(%s): %s", name, f.Name, a.Name, a.Type)] = true
			}
		}
		for _, v := range def.EnumValues {
			out[name+"."+v.Name] = true
		}
	}
	return out
}

func diffSets(a, b map[string]bool) (onlyA, onlyB []string) {
	for k := range a {
		if !b[k] {
			onlyA = append(onlyA, k)
		}
	}
	for k := range b {
		if !a[k] {
			onlyB = append(onlyB, k)
		}
	}
	return onlyA, onlyB
}

func TestIntrospectionAnswersTheServedSchema(t *testing.T) {
	_, srv := newTestSim(t, Options{})
	got := introspect(t, srv.URL)
	if got.Schema.QueryType.Name != "Query" {
		t.Errorf("queryType = %q", got.Schema.QueryType.Name)
	}
	want, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: prismcache.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	onlyIntro, onlySchema := diffSets(got.fieldTypes(), schemaFieldTypes(want))
	if len(onlyIntro) > 0 || len(onlySchema) > 0 || len(got.fieldTypes()) < 200 {
		t.Errorf("introspection and schema.graphql differ:\nonly introspected: %v\nonly in schema.graphql: %v (%d entries)", onlyIntro, onlySchema, len(got.fieldTypes()))
	}
}

func TestIntrospectionNeedsTheHeader(t *testing.T) {
	_, srv := newTestSim(t, Options{})
	for _, header := range []string{"", "false", "yes"} {
		t.Run("header "+header, func(t *testing.T) {
			for _, q := range []string{`{ __schema { queryType { name } } }`, `{ __type(name: "Instance") { name } }`} {
				status, resp := postIntrospection(t, srv.URL, q, header)
				if status != http.StatusOK || len(resp.Errors) != 1 || resp.Errors[0]["message"] != "introspection disabled" {
					t.Errorf("%s: status %d, %s", q, status, resp.raw)
				}
			}
			// __typename is not introspection: it always answers.
			_, resp := postIntrospection(t, srv.URL, `{ __typename instances(first: 1) { __typename totalCount } }`, header)
			if len(resp.Errors) > 0 || path(t, resp.Data, "__typename") != "Query" || path(t, resp.Data, "instances", "__typename") != "InstanceConnection" {
				t.Errorf("__typename: %s", resp.raw)
			}
		})
	}
	// The header's value is case-insensitive, as HTTP header names are.
	_, resp := postIntrospection(t, srv.URL, `{ __type(name: "Instance") { name } }`, "TRUE")
	if len(resp.Errors) > 0 || path(t, resp.Data, "__type", "name") != "Instance" {
		t.Errorf("with TRUE: %s", resp.raw)
	}
}

func TestSchemaChange(t *testing.T) {
	plain, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: prismcache.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	instanceOps := daemonOps(t)
	tests := []struct {
		change               SchemaChange
		onlyServed, onlyOurs []string
		// getInstance is the first error of the daemon's GetInstance, "" for none.
		getInstance string
	}{
		{SchemaChange{Field: "Instance.needsDeploy", Type: "Boolean"},
			[]string{"Instance.needsDeploy: Boolean"}, []string{"Instance.needsDeploy: Boolean!"}, ""},
		{SchemaChange{Field: "Instance.deployedVersion", Type: "String!"},
			[]string{"Instance.deployedVersion: String!"}, []string{"Instance.deployedVersion: Int!"}, ""},
		{SchemaChange{Field: "InstanceConfigVariable.status", Type: "[InstanceConfigVariableStatus!]"},
			[]string{"InstanceConfigVariable.status: [InstanceConfigVariableStatus!]"}, []string{"InstanceConfigVariable.status: InstanceConfigVariableStatus"}, ""},
		{SchemaChange{Field: "Instance.needsDeploy"},
			nil, []string{"Instance.needsDeploy: Boolean!"}, `Cannot query field "needsDeploy" on type "Instance".`},
	}
	for _, tt := range tests {
		t.Run(tt.change.String(), func(t *testing.T) {
			parsed, err := ParseSchemaChange(tt.change.String())
			if err != nil || parsed != tt.change {
				t.Fatalf("ParseSchemaChange(%q) = %+v, %v", tt.change, parsed, err)
			}
			sim, srv := newTestSim(t, Options{SchemaChange: tt.change})
			onlyServed, onlyOurs := diffSets(introspect(t, srv.URL).fieldTypes(), schemaFieldTypes(plain))
			if !slices.Equal(onlyServed, tt.onlyServed) || !slices.Equal(onlyOurs, tt.onlyOurs) {
				t.Errorf("introspection differs from schema.graphql by %v / %v, want %v / %v", onlyServed, onlyOurs, tt.onlyServed, tt.onlyOurs)
			}
			_, resp := postGraphQLOp(t, srv.URL, instanceOps, "GetInstance", map[string]any{"id": sim.DemoInstanceID(), "first": 100})
			switch {
			case tt.getInstance == "" && (len(resp.Errors) > 0 || path(t, resp.Data, "instance", "id") != sim.DemoInstanceID()):
				t.Errorf("GetInstance: %s", resp.raw)
			case tt.getInstance != "" && (len(resp.Errors) == 0 || resp.Errors[0]["message"] != tt.getInstance || resp.Data != nil):
				t.Errorf("GetInstance: %s, want the error %q", resp.raw, tt.getInstance)
			}
		})
	}

	// A change is this Sim's alone.
	_, srv := newTestSim(t, Options{})
	if a, b := diffSets(introspect(t, srv.URL).fieldTypes(), schemaFieldTypes(plain)); len(a)+len(b) > 0 {
		t.Errorf("an unchanged Sim serves %v / %v", a, b)
	}
}

func TestSchemaChangeRefused(t *testing.T) {
	for _, tt := range []struct{ change, want string }{
		{"Nope.x=String", `no object type "Nope"`},
		{"InstanceOrder.field=String", `no object type "InstanceOrder"`},
		{"Instance.nope=String", `type Instance has no field "nope"`},
		{"Instance.name=Nope", `no type "Nope"`},
		{"Instance.name=[String", `unclosed [`},
		{"Instance.name=String!!", `not a GraphQL type`},
		{"Instance.name=Int } type X {", `not a GraphQL type`},
		{"Instance.name=InstanceOrder", `input type InstanceOrder`},
	} {
		c, err := ParseSchemaChange(tt.change)
		if err != nil {
			t.Fatalf("ParseSchemaChange(%q): %v", tt.change, err)
		}
		_, err = New(Options{SchemaChange: c})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.change) {
			t.Errorf("New with %q: %v, want an error naming the change and saying %q", tt.change, err, tt.want)
		}
	}
	for _, bad := range []string{"Instance.name", "=String", ""} {
		if _, err := ParseSchemaChange(bad); err == nil {
			t.Errorf("ParseSchemaChange(%q) accepted", bad)
		}
	}
}
