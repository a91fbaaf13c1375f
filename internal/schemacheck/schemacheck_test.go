package schemacheck_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/prismcache/prismcache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/schemacheck"
)

// liveSchema starts a simulator serving schema.graphql with change applied
// and introspects it as prismcache does a real API.
func liveSchema(t *testing.T, change prismaticsim.SchemaChange) *ast.Schema {
	t.Helper()
	sim, err := prismaticsim.New(prismaticsim.Options{Seed: 1, Customers: 1, SchemaChange: change})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	api, err := graphql.New(graphql.Options{URL: srv.URL, Token: prismaticsim.DefaultAccessToken})
	if err != nil {
		t.Fatal(err)
	}
	data, err := api.Introspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s, err := schemacheck.FromIntrospection(data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ours(t *testing.T) *ast.Schema {
	t.Helper()
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: prismcache.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckAgainstAnUnchangedAPI(t *testing.T) {
	rep, err := schemacheck.Check(ours(t), liveSchema(t, prismaticsim.SchemaChange{}), graphql.OperationsSource())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Operations) < 7 || !slices.Contains(rep.Operations, "GetInstance") {
		t.Fatalf("report %+v", rep)
	}
}

// TestCheckNamesTheFieldThatDiffers: with one field of the API's schema
// changed, the check names that field, both types and the operations that
// use it — and a change to a field no operation uses is no difference.
func TestCheckNamesTheFieldThatDiffers(t *testing.T) {
	for _, tc := range []struct {
		change  string
		want    schemacheck.Difference
		refused string // a validation error of the API's, "" for none
	}{
		{"Instance.needsDeploy=Boolean", schemacheck.Difference{Field: "Instance.needsDeploy", Ours: "Boolean!", Live: "Boolean",
			Operations: []string{"CustomerConfigVariableInstances", "GetInstance", "GetInstanceConfigPage", "GetInstances", "ListCustomerInstances", "ListInstances"}}, ""},
		{"Instance.deployedVersion=String!", schemacheck.Difference{Field: "Instance.deployedVersion", Ours: "Int!", Live: "String!",
			Operations: []string{"CustomerConfigVariableInstances", "GetInstance", "GetInstanceConfigPage", "GetInstances", "ListCustomerInstances", "ListInstances"}}, ""},
		{"InstanceConfigVariable.status=[InstanceConfigVariableStatus!]", schemacheck.Difference{Field: "InstanceConfigVariable.status",
			Ours: "InstanceConfigVariableStatus", Live: "[InstanceConfigVariableStatus!]", Operations: []string{"CustomerConfigVariableInstances", "GetInstance", "GetInstanceConfigPage", "GetInstances", "ListCustomerInstances", "ListInstances"}}, ""},
		{"Instance.needsDeploy=", schemacheck.Difference{Field: "Instance.needsDeploy", Ours: "Boolean!", Live: "",
			Operations: []string{"CustomerConfigVariableInstances", "GetInstance", "GetInstanceConfigPage", "GetInstances", "ListCustomerInstances", "ListInstances"}}, `Cannot query field "needsDeploy" on type "Instance".`},
		{"Instance.description=Int", schemacheck.Difference{}, ""},
	} {
		t.Run(tc.change, func(t *testing.T) {
			c, err := prismaticsim.ParseSchemaChange(tc.change)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := schemacheck.Check(ours(t), liveSchema(t, c), graphql.OperationsSource())
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Field == "" {
				if !rep.OK() {
					t.Fatalf("a change no operation sees: %+v", rep)
				}
				return
			}
			if len(rep.Differences) != 1 || !slices.Equal(rep.Differences[0].Operations, tc.want.Operations) ||
				rep.Differences[0].Field != tc.want.Field || rep.Differences[0].Ours != tc.want.Ours || rep.Differences[0].Live != tc.want.Live {
				t.Fatalf("differences %+v, want %+v", rep.Differences, tc.want)
			}
			if s := rep.Differences[0].String(); !strings.Contains(s, tc.want.Field) || !strings.Contains(s, "GetInstance") {
				t.Errorf("String() = %q", s)
			}
			if tc.refused != "" && !slices.ContainsFunc(rep.Refused, func(m string) bool { return strings.Contains(m, tc.refused) }) {
				t.Errorf("refused %q, want %q among them", rep.Refused, tc.refused)
			}
			if rep.OK() {
				t.Error("OK() with a difference")
			}
		})
	}
}

// TestPullFromAnUnchangedAPIWritesTheSameFile: schema.graphql, pulled from
// an API that serves it, comes out byte for byte, comments and layout
// included, and Pull reports no change.
func TestPullFromAnUnchangedAPIWritesTheSameFile(t *testing.T) {
	res, err := schemacheck.Pull("schema.graphql", prismcache.Schema(), liveSchema(t, prismaticsim.SchemaChange{}), "# Pulled from test")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 0 {
		t.Errorf("changes %q", res.Changes)
	}
	if res.Text != prismcache.Schema() {
		t.Fatalf("the file changed:\n%s", firstDifference(prismcache.Schema(), res.Text))
	}
}

// TestPullFollowsTheAPI: after a pull from an API whose schema differs in
// one field, schema.graphql differs from before in that field's line (its
// comment kept, with a note) and the header's note; the operations check
// clean against the API with it; and a second pull changes nothing.
func TestPullFollowsTheAPI(t *testing.T) {
	for _, tc := range []struct {
		change, oldLine, newLine string
	}{
		{"Instance.needsDeploy=Boolean",
			"  needsDeploy: Boolean!                          # [use] S-API, E-AGENT; Boolean! [inf]",
			"  needsDeploy: Boolean                           # [use] S-API, E-AGENT; Boolean! [inf]; [live] was Boolean!"},
		{"Instance.lastDeployedAt=",
			"  lastDeployedAt: DateTime                       # [doc] D-INST (type name visible, nullability cut off) [inf]", ""},
	} {
		t.Run(tc.change, func(t *testing.T) {
			c, err := prismaticsim.ParseSchemaChange(tc.change)
			if err != nil {
				t.Fatal(err)
			}
			live := liveSchema(t, c)
			res, err := schemacheck.Pull("schema.graphql", prismcache.Schema(), live, "# Pulled from http://sim on 2026-01-02.")
			if err != nil {
				t.Fatal(err)
			}
			field, _, _ := strings.Cut(c.Field, "=")
			if len(res.Changes) != 1 || !strings.Contains(res.Changes[0], field) {
				t.Fatalf("changes %q, want one naming %s", res.Changes, field)
			}
			removed, added := lineDiff(prismcache.Schema(), res.Text)
			wantAdded := []string{"#", "# Pulled from http://sim on 2026-01-02."}
			if tc.newLine != "" {
				wantAdded = append(wantAdded, tc.newLine)
			}
			if !slices.Equal(removed, []string{tc.oldLine}) || !slices.Equal(added, wantAdded) {
				t.Fatalf("removed %q\nadded %q", removed, added)
			}
			pulled, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: res.Text})
			if gerr != nil {
				t.Fatal(gerr)
			}
			if tc.newLine != "" {
				rep, err := schemacheck.Check(pulled, live, graphql.OperationsSource())
				if err != nil || !rep.OK() {
					t.Fatalf("after the pull: %+v, %v", rep, err)
				}
			}
			again, err := schemacheck.Pull("schema.graphql", res.Text, live, "# Pulled from http://sim on 2026-01-03.")
			if err != nil || len(again.Changes) != 0 || again.Text != res.Text {
				t.Fatalf("a second pull: changes %q, err %v\n%s", again.Changes, err, firstDifference(res.Text, again.Text))
			}
		})
	}
}

func TestFromIntrospectionRefusesWhatIsNotASchema(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"not JSON", `nope`, "introspection answer"},
		{"no types", `{"__schema":{"queryType":{"name":"Query"},"types":[]}}`, "no types"},
		{"bad type name", `{"__schema":{"queryType":{"name":"Query"},"types":[{"kind":"SCALAR","name":"A B"}]}}`, "not a GraphQL name"},
		{"cut short", `{"__schema":{"queryType":{"name":"Query"},"types":[{"kind":"OBJECT","name":"Query","fields":[{"name":"x","args":[],"type":{"kind":"NON_NULL","ofType":null}}]}]}}`, "without ofType"},
		{"default that is not a literal", `{"__schema":{"queryType":{"name":"Query"},"types":[{"kind":"OBJECT","name":"Query","fields":[{"name":"x","args":[{"name":"a","type":{"kind":"SCALAR","name":"Int"},"defaultValue":"1) : Int } type Evil { y: Int"}],"type":{"kind":"SCALAR","name":"Int"}}]}]}}`, "not one GraphQL literal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := schemacheck.FromIntrospection([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// lineDiff lists the lines only in a and only in b, in order.
func lineDiff(a, b string) (onlyA, onlyB []string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	count := map[string]int{}
	for _, l := range bl {
		count[l]++
	}
	for _, l := range al {
		if count[l] > 0 {
			count[l]--
		} else {
			onlyA = append(onlyA, l)
		}
	}
	count = map[string]int{}
	for _, l := range al {
		count[l]++
	}
	for _, l := range bl {
		if count[l] > 0 {
			count[l]--
		} else {
			onlyB = append(onlyB, l)
		}
	}
	return onlyA, onlyB
}

func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return "(same lines)"
}

// TestPullAddsWhatTheNewDefinitionsNeed: enum values the API added, an
// argument it requires, and a type a changed field now has are written;
// fields of the API that the file never declared are not.
func TestPullAddsWhatTheNewDefinitionsNeed(t *testing.T) {
	liveSDL := strings.NewReplacer(
		"enum OrderDirection { ASC DESC }", "enum OrderDirection { ASC DESC RANDOM }",
		"  instance(id: ID!): Instance\n", "  instance(id: ID!, tenant: String!): Instance\n",
		"  instanceType: InstanceType ", "  instanceType: InstanceKind ",
		"type Component {\n", "enum InstanceKind { A B }\n\ntype Extra { id: ID! }\n\ntype Component {\n  extra: Extra\n",
	).Replace(prismcache.Schema())
	live, gerr := gqlparser.LoadSchema(&ast.Source{Name: "live", Input: liveSDL})
	if gerr != nil {
		t.Fatal(gerr)
	}
	res, err := schemacheck.Pull("schema.graphql", prismcache.Schema(), live, "# Pulled from test")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"enum OrderDirection { ASC DESC RANDOM }",
		"  instance(id: ID!, tenant: String!): Instance   # [live] (tenant) added",
		"  instanceType: InstanceKind                     # [use] E-AGENT; enum per P-SCHEMA [inf]; [live] was InstanceType",
		"enum InstanceKind {                              # [live]\n  A\n  B\n}\n",
	} {
		if !strings.Contains(res.Text, want) {
			t.Errorf("the pulled file lacks %q", want)
		}
	}
	if strings.Contains(res.Text, "type Extra") || strings.Contains(res.Text, "extra: Extra") {
		t.Error("a type and a field the file never declared were pulled in")
	}
	if len(res.Changes) != 4 {
		t.Errorf("changes %q", res.Changes)
	}
}
