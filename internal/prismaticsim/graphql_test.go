package prismaticsim

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

func TestValidationErrors(t *testing.T) {
	_, srv := newTestSim(t, Options{})
	tests := []struct {
		name, query, want string
	}{
		{"unknown field", `{ instance(id: "x") { id notAField } }`, `Cannot query field "notAField" on type "Instance"`},
		{"unknown argument", `{ instance(key: "x") { id } }`, `Unknown argument "key"`},
		{"wrong argument type", `{ instances(first: "ten") { totalCount } }`, `Int cannot represent`},
		{"key on InstanceConfigVariable (not in the schema)", `{ instance(id: "x") { configVariables { nodes { key } } } }`, `Cannot query field "key"`},
		{"syntax error", `{ instance(id: "x") { id }`, `Expected Name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, resp := postGraphQL(t, srv.URL, DefaultAccessToken, tt.query, nil)
			if status != http.StatusOK {
				t.Fatalf("status %d, want 200", status)
			}
			if strings.Contains(string(resp.raw), `"data"`) {
				t.Errorf("a validation error must not carry data: %s", resp.raw)
			}
			if len(resp.Errors) == 0 || !strings.Contains(fmt.Sprint(resp.Errors[0]["message"]), tt.want) {
				t.Fatalf("errors %s, want a message containing %q", resp.raw, tt.want)
			}
			if resp.Errors[0]["locations"] == nil {
				t.Errorf("error without locations: %s", resp.raw)
			}
		})
	}
}

func TestConfigVariablesPagePast100(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	res, err := sim.CreateInstance(NewInstance{Customer: "acme-001", Integration: "Salesforce Sync", ExtraVariables: 244, Deploy: true})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Instance.ID
	const q = `query($id: ID!, $after: String) { instance(id: $id) {
		configVariables(first: 100, after: $after) {
			totalCount nodes { id requiredConfigVariable { key } } pageInfo { hasNextPage endCursor }
		} } }`
	var after any
	var sizes []int
	var keys []string
	for range 10 {
		data := mustQuery(t, srv.URL, q, map[string]any{"id": id, "after": after})
		conn := path(t, data, "instance", "configVariables")
		if got := path(t, conn, "totalCount"); got != float64(250) {
			t.Fatalf("totalCount = %v, want 250", got)
		}
		nodes := path(t, conn, "nodes").([]any)
		sizes = append(sizes, len(nodes))
		for i := range nodes {
			keys = append(keys, path(t, nodes, i, "requiredConfigVariable", "key").(string))
		}
		if path(t, conn, "pageInfo", "hasNextPage") != true {
			break
		}
		after = path(t, conn, "pageInfo", "endCursor")
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Fatalf("page sizes %v, want [100 100 50]", sizes)
	}
	if keys[0] != "salesforceConnection" || keys[249] != "extra244" || len(slices.Compact(slices.Clone(keys))) != 250 {
		t.Errorf("keys not in order or repeated: first %s, last %s", keys[0], keys[249])
	}
	// The cursor of the 100th variable is Relay's offset cursor.
	data := mustQuery(t, srv.URL, q, map[string]any{"id": id})
	if got := path(t, data, "instance", "configVariables", "pageInfo", "endCursor"); got != "YXJyYXljb25uZWN0aW9uOjk5" {
		t.Errorf("endCursor = %v, want base64(arrayconnection:99)", got)
	}

	// More than 100 is a field error; the non-null connection nulls the
	// instance.
	_, resp := postGraphQL(t, srv.URL, DefaultAccessToken,
		`query($id: ID!) { instance(id: $id) { configVariables(first: 101) { totalCount } } }`, map[string]any{"id": id})
	if len(resp.Errors) != 1 || !strings.Contains(fmt.Sprint(resp.Errors[0]["message"]), "limit of 100") || path(t, resp.Data, "instance") != nil {
		t.Errorf("first: 101 gave %s", resp.raw)
	}
}

func TestQueriesTheDaemonNeverSends(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	demo := sim.DemoInstanceID()
	all := sim.Instances()
	other := all[len(all)-1].ID
	tests := []struct {
		name  string
		query string
		vars  map[string]any
		check func(t *testing.T, data map[string]any)
	}{
		{
			name:  "another selection of instance fields",
			query: `query($id: ID!) { instance(id: $id) { __typename name description labels configState inFailedState instanceType designedBy integration { name category versionNumber } flowConfigs { totalCount nodes { flow { name stableKey } webhookUrl } } } }`,
			vars:  map[string]any{"id": demo},
			check: func(t *testing.T, data map[string]any) {
				in := path(t, data, "instance")
				want := map[string]any{"__typename": "Instance", "name": "Acme Corp - Salesforce Sync", "configState": "FULLY_CONFIGURED", "instanceType": "INTEGRATION", "designedBy": "ORG", "inFailedState": false}
				for k, v := range want {
					if got := path(t, in, k); got != v {
						t.Errorf("%s = %v, want %v", k, got, v)
					}
				}
				if got := path(t, in, "integration", "name"); got != "Salesforce Sync" {
					t.Errorf("integration = %v", got)
				}
				if got := path(t, in, "flowConfigs", "totalCount"); got != float64(2) {
					t.Errorf("flowConfigs.totalCount = %v", got)
				}
			},
		},
		{
			name:  "aliases",
			query: `query($a: ID!, $b: ID!) { a: instance(id: $a) { id n: name } b: instance(id: $b) { id } }`,
			vars:  map[string]any{"a": demo, "b": other},
			check: func(t *testing.T, data map[string]any) {
				if path(t, data, "a", "id") != demo || path(t, data, "b", "id") != other || path(t, data, "a", "n") != "Acme Corp - Salesforce Sync" {
					t.Errorf("data = %v", data)
				}
			},
		},
		{
			name: "named and inline fragments",
			query: `query($id: ID!) { instance(id: $id) { ...Head ... on Instance { customer { ...Cust } } } }
				fragment Head on Instance { id enabled }
				fragment Cust on Customer { externalId name }`,
			vars: map[string]any{"id": demo},
			check: func(t *testing.T, data map[string]any) {
				if path(t, data, "instance", "customer", "externalId") != "acme-001" || path(t, data, "instance", "enabled") != true {
					t.Errorf("data = %v", data)
				}
			},
		},
		{
			name:  "skip and include with variables",
			query: `query($id: ID!, $withName: Boolean!, $skipId: Boolean = true) { instance(id: $id) { id @skip(if: $skipId) name @include(if: $withName) enabled @include(if: false) } }`,
			vars:  map[string]any{"id": demo, "withName": true},
			check: func(t *testing.T, data map[string]any) {
				in := path(t, data, "instance").(map[string]any)
				if len(in) != 1 || in["name"] == nil {
					t.Errorf("instance = %v, want only name", in)
				}
			},
		},
		{
			name:  "list argument given as a single object",
			query: `{ instances(isSystem: false, sortBy: {field: NAME, direction: DESC}, first: 2) { nodes { name } } }`,
			check: func(t *testing.T, data map[string]any) {
				if got := path(t, data, "instances", "nodes", 0, "name"); got != "Initech - Slack Alerts" {
					t.Errorf("first by NAME DESC = %v", got)
				}
			},
		},
		{
			name:  "config variable fields and credentials as inputs",
			query: `query($id: ID!) { instance(id: $id) { configVariables(status: "active") { nodes { status requiredConfigVariable { key dataType connection { key component { key } } } inputs { nodes { name type hasValue } } customerConfigVariable { key status } } } } }`,
			vars:  map[string]any{"id": demo},
			check: func(t *testing.T, data map[string]any) {
				nodes := path(t, data, "instance", "configVariables", "nodes").([]any)
				if len(nodes) != 2 {
					t.Fatalf("active connections = %d, want 2 (salesforce, shared slack)", len(nodes))
				}
				if path(t, nodes, 0, "requiredConfigVariable", "connection", "component", "key") != "salesforce" ||
					path(t, nodes, 0, "inputs", "nodes", 1, "name") != "clientSecret" ||
					path(t, nodes, 1, "customerConfigVariable", "key") != "sharedSlack" {
					t.Errorf("nodes = %v", nodes)
				}
			},
		},
		{
			name:  "last and before",
			query: `{ instances(isSystem: false, last: 2) { nodes { name } pageInfo { hasPreviousPage hasNextPage startCursor } } }`,
			check: func(t *testing.T, data map[string]any) {
				if path(t, data, "instances", "pageInfo", "hasPreviousPage") != true || path(t, data, "instances", "nodes", 1, "name") != "Initech - HubSpot Contacts" {
					t.Errorf("data = %v", data)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustQuery(t, srv.URL, tt.query, tt.vars))
		})
	}
}

func TestDaemonOperationsVerbatim(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	demo := sim.DemoInstanceID()
	ops := daemonOps(t)
	instanceOps, listOps, connOps := ops, ops, ops
	var ccv CustomerConnection
	for _, c := range sim.CustomerConnections() {
		if c.CustomerExternalID == "acme-001" {
			ccv = c
		}
	}
	send := func(t *testing.T, doc, op string, vars map[string]any) map[string]any {
		t.Helper()
		status, resp := postGraphQLOp(t, srv.URL, doc, op, vars)
		if status != http.StatusOK || len(resp.Errors) > 0 {
			t.Fatalf("%s: status %d, %s", op, status, resp.raw)
		}
		return resp.Data
	}

	t.Run("GetInstance", func(t *testing.T) {
		data := send(t, instanceOps, "GetInstance", map[string]any{"id": demo, "first": 100})
		in := path(t, data, "instance")
		if path(t, in, "id") != demo || path(t, in, "deployedVersion") != float64(1) || path(t, in, "needsDeploy") != false ||
			path(t, in, "customer", "externalId") != "acme-001" || path(t, in, "integration", "versionNumber") != float64(3) {
			t.Errorf("instance = %v", in)
		}
		nodes := path(t, in, "configVariables", "nodes").([]any)
		if len(nodes) != 6 {
			t.Fatalf("config variables = %d, want 6", len(nodes))
		}
		slack := nodes[1]
		if path(t, slack, "requiredConfigVariable", "key") != "slackConnection" || path(t, slack, "status") != "ACTIVE" ||
			path(t, slack, "customerConfigVariable", "id") != ccv.ID || path(t, slack, "value") != nil {
			t.Errorf("slackConnection = %v", slack)
		}
		if path(t, nodes[2], "value") != "0 * * * *" || path(t, nodes[2], "requiredConfigVariable", "dataType") != "SCHEDULE" {
			t.Errorf("syncFrequency = %v", nodes[2])
		}
		if path(t, in, "configVariables", "pageInfo", "hasNextPage") != false {
			t.Errorf("hasNextPage should be false")
		}
	})
	t.Run("GetInstances", func(t *testing.T) {
		vars := map[string]any{"first": 100, "id0": demo, "id1": "SW5zdGFuY2U6bm9uZQ==", "use1": true}
		for i := 2; i < 10; i++ {
			vars[fmt.Sprintf("id%d", i)], vars[fmt.Sprintf("use%d", i)] = "", false
		}
		data := send(t, instanceOps, "GetInstances", vars)
		if path(t, data, "i0", "id") != demo || data["i1"] != nil || len(data) != 2 {
			t.Errorf("GetInstances = %v, want the demo instance, null for the unknown id, nothing for the slots not used", data)
		}
	})
	t.Run("GetInstanceConfigPage", func(t *testing.T) {
		data := send(t, instanceOps, "GetInstanceConfigPage", map[string]any{"id": demo, "first": 2, "after": cursor(1)})
		nodes := path(t, data, "instance", "configVariables", "nodes").([]any)
		if len(nodes) != 2 || path(t, nodes, 0, "requiredConfigVariable", "key") != "syncFrequency" ||
			path(t, data, "instance", "configVariables", "pageInfo", "hasNextPage") != true {
			t.Errorf("page = %v", data)
		}
	})
	t.Run("ListInstances", func(t *testing.T) {
		var ids []string
		vars := map[string]any{"first": 4, "after": nil}
		for {
			data := send(t, listOps, "ListInstances", vars)
			conn := path(t, data, "instances")
			if path(t, conn, "totalCount") != float64(9) {
				t.Fatalf("totalCount = %v, want 9 customer instances", path(t, conn, "totalCount"))
			}
			for _, n := range path(t, conn, "nodes").([]any) {
				ids = append(ids, path(t, n, "id").(string))
			}
			if path(t, conn, "pageInfo", "hasNextPage") != true {
				break
			}
			vars["after"] = path(t, conn, "pageInfo", "endCursor")
		}
		var want []string
		for _, in := range sim.Instances() {
			if !in.IsSystem {
				want = append(want, in.ID)
			}
		}
		if !slices.Equal(ids, want) {
			t.Errorf("ids = %v\nwant  %v", ids, want)
		}
	})
	t.Run("CustomerConfigVariableInstances", func(t *testing.T) {
		data := send(t, connOps, "CustomerConfigVariableInstances", map[string]any{"id": ccv.ID, "first": 100})
		var got []string
		for _, n := range path(t, data, "customerConfigVariable", "instances", "nodes").([]any) {
			got = append(got, path(t, n, "id").(string))
		}
		if !slices.Equal(got, ccv.InstanceIDs) || len(got) != 2 || got[0] != demo {
			t.Errorf("instances = %v, want %v", got, ccv.InstanceIDs)
		}
	})
	t.Run("ScopedConfigVariableCustomerVariables", func(t *testing.T) {
		data := send(t, connOps, "ScopedConfigVariableCustomerVariables", map[string]any{"scopedId": ccv.ScopedID, "first": 100})
		nodes := path(t, data, "customerConfigVariables", "nodes").([]any)
		if len(nodes) != 2 || path(t, nodes, 0, "id") != ccv.ID {
			t.Errorf("nodes = %v, want Acme's and Initech's", nodes)
		}
	})
}

func TestInstancesFilters(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	demo := sim.DemoInstanceID()
	if _, err := sim.SetConfig(demo, "batchSize", "500"); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Disable(demo); err != nil {
		t.Fatal(err)
	}
	acme, _ := sim.Instance(demo)
	tests := []struct {
		args string
		want int
	}{
		{``, 12},
		{`isSystem: false`, 9},
		{`isSystem: true`, 3},
		{`customer_ExternalId: "acme-001"`, 3},
		{`customer_ExternalId: "nobody"`, 0},
		{fmt.Sprintf(`customer: %q`, acme.CustomerID), 3},
		{fmt.Sprintf(`integration: %q, isSystem: false`, acme.IntegrationID), 3},
		{`needsDeploy: true`, 1},
		{`needsDeploy: false, isSystem: false`, 8},
		{`enabled: false`, 1},
		{`name: "Acme Corp - Slack Alerts"`, 1},
		{`name_Icontains: "HUBSPOT", isSystem: false`, 3},
		{`first: 5`, 5},
		{`first: 5, offset: 10`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			q := `{ instances` + "(" + tt.args + ")" + ` { totalCount nodes { id } } }`
			if tt.args == "" {
				q = `{ instances { totalCount nodes { id } } }`
			}
			data := mustQuery(t, srv.URL, q, nil)
			if got := len(path(t, data, "instances", "nodes").([]any)); got != tt.want {
				t.Errorf("%d nodes, want %d", got, tt.want)
			}
		})
	}
	data := mustQuery(t, srv.URL, `{ instances(needsDeploy: true) { nodes { id } } }`, nil)
	if path(t, data, "instances", "nodes", 0, "id") != demo {
		t.Errorf("needsDeploy: true should find the changed demo instance")
	}
}

// TestInstancesListingFollowsChanges: a listing is remembered between
// requests, but never past a change to the model.
func TestInstancesListingFollowsChanges(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	const q = `{ instances(isSystem: false, sortBy: [{field: VERSION, direction: DESC}]) { totalCount nodes { id deployedVersion } } }`
	first := func() (int, string) {
		data := mustQuery(t, srv.URL, q, nil)
		return int(path(t, data, "instances", "totalCount").(float64)), path(t, data, "instances", "nodes", 0, "id").(string)
	}
	n, _ := first()
	if again, _ := first(); again != n {
		t.Fatalf("totalCount %d, then %d with no change", n, again)
	}
	last := sim.Instances()[len(sim.Instances())-1].ID
	if _, err := sim.Deploy(last); err != nil {
		t.Fatal(err)
	}
	if _, top := first(); top != last {
		t.Errorf("after a deploy the first by version is %s, want %s", top, last)
	}
	if _, err := sim.Delete(last); err != nil {
		t.Fatal(err)
	}
	if got, top := first(); got != n-1 || top == last {
		t.Errorf("after a delete: totalCount %d (want %d), first %s (the deleted one is %s)", got, n-1, top, last)
	}
	res, err := sim.CreateInstance(NewInstance{Customer: "acme-001", Integration: "Slack Alerts", Deploy: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := first(); got != n {
		t.Errorf("after a create: totalCount %d, want %d", got, n)
	}
	data := mustQuery(t, srv.URL, `{ instances(isSystem: false, sortBy: [{field: CREATED_AT, direction: DESC}], first: 1) { nodes { id } } }`, nil)
	if got := path(t, data, "instances", "nodes", 0, "id"); got != res.Instance.ID {
		t.Errorf("newest instance %v, want the one created, %s", got, res.Instance.ID)
	}
}

func TestInstanceNullForUnknownDeletedMalformed(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	victim := sim.Instances()[5].ID
	if _, err := sim.Delete(victim); err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]string{
		"unknown":   globalID("Instance", "00000000-0000-4000-8000-000000000000"),
		"deleted":   victim,
		"malformed": "not base64 at all!",
		"wrongType": globalID("Customer", "00000000-0000-4000-8000-000000000000"),
	} {
		t.Run(name, func(t *testing.T) {
			data := mustQuery(t, srv.URL, `query($id: ID!) { instance(id: $id) { id } }`, map[string]any{"id": id})
			if v, ok := data["instance"]; !ok || v != nil {
				t.Errorf("instance = %v, want null", v)
			}
		})
	}
	if got := sim.Stats().InstanceFetchesByID[victim]; got != 1 {
		t.Errorf("fetches of the deleted id = %d, want 1", got)
	}
}

func TestScalarsAndIDs(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	demo := sim.DemoInstanceID()
	data := mustQuery(t, srv.URL, `query($id: ID!) { instance(id: $id) { createdAt lastDeployedAt updatedAt customer { id } configVariables(first: 1) { nodes { id meta refreshAt } } } }`, map[string]any{"id": demo})
	dt := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`)
	for _, k := range []string{"createdAt", "lastDeployedAt", "updatedAt"} {
		if v, _ := path(t, data, "instance", k).(string); !dt.MatchString(v) {
			t.Errorf("%s = %q, not like 2022-02-28T21:04:42.282103+00:00", k, v)
		}
	}
	if v := path(t, data, "instance", "configVariables", "nodes", 0, "meta"); v != `{"authType":"oauth2"}` {
		t.Errorf("meta = %#v, want a string holding JSON", v)
	}
	for _, tc := range []struct{ id, typ string }{
		{demo, "Instance"},
		{path(t, data, "instance", "customer", "id").(string), "Customer"},
		{path(t, data, "instance", "configVariables", "nodes", 0, "id").(string), "InstanceConfigVariable"},
	} {
		typ, uuid, ok := decodeGlobalID(tc.id)
		if !ok || typ != tc.typ || len(uuid) != 36 || globalID(typ, uuid) != tc.id {
			t.Errorf("id %s decodes to %s:%s", tc.id, typ, uuid)
		}
	}
}

// TestEveryFieldResolves proves the model covers the schema: a query
// selecting every field (four levels of objects deep) from each root field
// answers without an error, so no non-null field was left unset.
func TestEveryFieldResolves(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	ccv := sim.CustomerConnections()[0].ID
	schema := sim.schema
	for _, root := range []string{"instance", "instances", "customerConfigVariable", "customerConfigVariables"} {
		t.Run(root, func(t *testing.T) {
			f := schema.Query.Fields.ForName(root)
			args := ""
			switch root {
			case "instance":
				args = fmt.Sprintf("(id: %q)", sim.DemoInstanceID())
			case "customerConfigVariable":
				args = fmt.Sprintf("(id: %q)", ccv)
			}
			q := "{ " + root + args + " " + selectAll(schema, f.Type.Name(), 4) + " }"
			data := mustQuery(t, srv.URL, q, nil)
			if data[root] == nil {
				t.Errorf("%s is null", root)
			}
		})
	}
}

// selectAll builds a selection of every field of an object type, to depth.
func selectAll(schema *ast.Schema, typeName string, depth int) string {
	def := schema.Types[typeName]
	var parts []string
	for _, f := range def.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		inner := schema.Types[f.Type.Name()]
		if inner.Kind != ast.Object {
			parts = append(parts, f.Name)
			continue
		}
		if depth > 0 {
			parts = append(parts, f.Name+" "+selectAll(schema, inner.Name, depth-1))
		}
	}
	if len(parts) == 0 {
		return "{ __typename }"
	}
	return "{ " + strings.Join(parts, " ") + " }"
}
