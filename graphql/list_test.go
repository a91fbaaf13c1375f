package graphql

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/testutil"
)

// listNode is one instance of a listing's answer, with vars config
// variables of which the page carries the first perPage.
func listNode(id string, version int, externalID any, vars, perPage int) map[string]any {
	var ns []any
	for i := range min(vars, perPage) {
		ns = append(ns, configVarJSON(i))
	}
	inst := instanceJSON(id, "name of "+id, version, ns, cursor(min(vars, perPage)), vars > perPage)
	inst["needsDeploy"] = version%2 == 0
	inst["lastDeployedAt"] = nil
	inst["customer"].(map[string]any)["externalId"] = externalID
	return inst
}

func listReply(t *testing.T, nodes []any, hasNext bool, endCursor any, total int) reply {
	t.Helper()
	return dataReply(t, map[string]any{"instances": map[string]any{
		"nodes":      nodes,
		"pageInfo":   map[string]any{"hasNextPage": hasNext, "endCursor": endCursor},
		"totalCount": total,
	}})
}

// TestListInstances: a page carries each instance's document, the same
// fields a fetch has, and says which instances have more config variables
// than the page holds, and when it was asked for.
func TestListInstances(t *testing.T) {
	clock := testutil.NewClock()
	api := newFakeAPI(t, func(req gqlRequest) reply {
		if req.Variables["first"] != float64(PageSize) {
			t.Errorf("first = %v, want %d", req.Variables["first"], PageSize)
		}
		switch after := req.Variables["after"]; after {
		case nil:
			return listReply(t, []any{listNode("I1", 1, "acme-001", 3, PageSize), nil, listNode("I2", 2, nil, 150, PageSize)}, true, "c1", 3)
		case "c1":
			return listReply(t, []any{listNode("I3", 3, "", 0, PageSize)}, false, "c2", 3)
		default:
			t.Errorf("unexpected after %v", after)
			return reply{status: 400}
		}
	})
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok", Now: clock.Now})

	page, err := c.ListInstances(context.Background(), "")
	if err != nil {
		t.Fatalf("first page: %v", err)
	}
	if page.Next != "c1" || page.TotalCount != 3 || len(page.Instances) != 2 || page.Size != PageSize || !page.Sent.Equal(clock.Now()) {
		t.Fatalf("first page = %+v, want 2 instances, next c1, total 3, size %d, sent at %v", page, PageSize, clock.Now())
	}
	got := page.Instances[0]
	if got.ID != "I1" || got.Name != "name of I1" || got.DeployedVersion != 1 || got.NeedsDeploy || got.LastDeployedAt != nil ||
		!got.UpdatedAt.Equal(updatedAt) || got.Customer.ExternalId == nil || *got.Customer.ExternalId != "acme-001" ||
		got.Integration.Name != "Salesforce Sync" || len(got.ConfigVariables) != 3 || got.Partial {
		t.Errorf("first instance = %+v", got)
	}
	if got := page.Instances[1]; got.ID != "I2" || got.Customer.ExternalId != nil || !got.NeedsDeploy ||
		len(got.ConfigVariables) != PageSize || !got.Partial {
		t.Errorf("second instance = %+v, want I2 without external id, partial with %d config variables", got, PageSize)
	}

	clock.Advance(time.Minute)
	page, err = c.ListInstances(context.Background(), page.Next)
	if err != nil {
		t.Fatalf("second page: %v", err)
	}
	if page.Next != "" || len(page.Instances) != 1 || page.Instances[0].ID != "I3" || !page.Sent.Equal(clock.Now()) {
		t.Errorf("last page = %+v, want I3 and no next cursor", page)
	}
	if !strings.Contains(api.calls()[0].Query, "isSystem: false") {
		t.Errorf("ListInstances does not exclude system instances: %s", api.calls()[0].Query)
	}
}

// TestListAndFetchSelectTheSameFields: the listings and the fetch select
// one fragment for an instance, so what a page carries of an instance is
// what a fetch does, and the two cannot drift apart.
func TestListAndFetchSelectTheSameFields(t *testing.T) {
	ops := map[string]string{
		"GetInstance": GetInstance_Operation, "ListInstances": ListInstances_Operation,
		"ListCustomerInstances": ListCustomerInstances_Operation, "CustomerConfigVariableInstances": CustomerConfigVariableInstances_Operation,
	}
	for name, q := range ops {
		head := q[:strings.Index(q, "fragment ")]
		if !strings.Contains(head, "... InstanceFields") || strings.Contains(head, "deployedVersion") {
			t.Errorf("%s does not select an instance through the InstanceFields fragment alone:\n%s", name, head)
		}
	}
}

func TestListInstancesBadCursor(t *testing.T) {
	tests := []struct {
		name      string
		after     string
		endCursor any
	}{
		{"no endCursor", "", nil},
		{"empty endCursor", "", ""},
		{"endCursor does not move", "c1", "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, func(req gqlRequest) reply {
				return listReply(t, []any{listNode("I1", 1, nil, 0, PageSize)}, true, tt.endCursor, 10)
			})
			c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
			page, err := c.ListInstances(context.Background(), tt.after)
			e := mustError(t, err)
			if e.Kind != Invalid || e.Op != "ListInstances" || len(page.Instances) != 0 {
				t.Errorf("ListInstances = %+v, %v; want an invalid ListInstances error", page, err)
			}
		})
	}
}

func TestListInstancesError(t *testing.T) {
	api := newFakeAPI(t, func(gqlRequest) reply { return reply{status: 502} })
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
	_, err := c.ListInstances(context.Background(), "")
	if e := mustError(t, err); e.Kind != Transient || e.Op != "ListInstances" {
		t.Errorf("err = %v, want a transient ListInstances error", err)
	}
}

// connFake serves CustomerConfigVariableInstances,
// ScopedConfigVariableCustomerVariables and ListCustomerInstances, pageSize
// items a page (at most the first the request asks for).
type connFake struct {
	t        *testing.T
	pageSize int
	// users maps a customer config variable (or, for
	// ListCustomerInstances, a customer) to the instances using it; a
	// variable not in it does not exist.
	users map[string][]string
	// scoped maps a scoped config variable to its customer variables.
	scoped map[string][]string
	// stuck, when set, answers every page with this endCursor.
	stuck string
	// fail, when set, answers 500 to requests about this id.
	fail string
}

func (f *connFake) serve(req gqlRequest) reply {
	offset := 0
	if after := req.Variables["after"]; after != nil {
		n, err := strconv.Atoi(strings.TrimPrefix(req.str("after"), "cursor:"))
		if err != nil && f.stuck == "" {
			f.t.Errorf("%s after=%v, not a cursor this fake gave", req.OperationName, after)
		}
		offset = n
	}
	first, _ := req.Variables["first"].(float64)
	page := func(all []string, node func(id string) any) map[string]any {
		end := min(offset+min(f.pageSize, int(first)), len(all))
		var nodes []any
		for _, id := range all[min(offset, end):end] {
			nodes = append(nodes, node(id))
		}
		var endCursor any = cursor(end)
		if f.stuck != "" {
			endCursor = f.stuck
		}
		return map[string]any{"nodes": nodes, "pageInfo": map[string]any{"hasNextPage": end < len(all), "endCursor": endCursor}}
	}
	idNode := func(id string) any { return map[string]any{"id": id} }
	docNode := func(id string) any { return listNode(id, 3, "acme-001", 2, int(first)) }
	switch req.OperationName {
	case "CustomerConfigVariableInstances":
		id := req.str("id")
		if id == f.fail {
			return reply{status: 500, body: "boom"}
		}
		users, ok := f.users[id]
		if !ok {
			return dataReply(f.t, map[string]any{"customerConfigVariable": nil})
		}
		return dataReply(f.t, map[string]any{"customerConfigVariable": map[string]any{"id": id, "instances": page(users, docNode)}})
	case "ScopedConfigVariableCustomerVariables":
		return dataReply(f.t, map[string]any{"customerConfigVariables": page(f.scoped[req.str("scopedId")], idNode)})
	case "ListCustomerInstances":
		return dataReply(f.t, map[string]any{"instances": page(f.users[req.str("customer")], docNode)})
	}
	f.t.Errorf("unexpected operation %s", req.OperationName)
	return reply{status: 400}
}

func newConnAPI(t *testing.T, f *connFake) (*fakeAPI, *Client) {
	t.Helper()
	f.t = t
	api := newFakeAPI(t, f.serve)
	return api, mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
}

// collect returns a page callback that gathers the instances' ids and
// checks that each came with its document.
func collect(t *testing.T, ids *[]string) func(ListPage) error {
	return func(p ListPage) error {
		if p.Sent.IsZero() || p.Size == 0 {
			t.Errorf("page without its send time or size: %+v", p)
		}
		for _, in := range p.Instances {
			if in.DeployedVersion != 3 || len(in.ConfigVariables) != 2 || in.Partial {
				t.Errorf("instance %s came without its document: %+v", in.ID, in)
			}
			*ids = append(*ids, in.ID)
		}
		return nil
	}
}

func TestConnectionInstances(t *testing.T) {
	users := map[string][]string{
		"C0": {},
		"C1": {"I1"},
		"C5": {"I1", "I2", "I3", "I4", "I5"},
	}
	tests := []struct {
		id       string
		want     []string
		ok       bool
		requests int
	}{
		{"C0", nil, true, 1},
		{"C1", []string{"I1"}, true, 1},
		{"C5", []string{"I1", "I2", "I3", "I4", "I5"}, true, 3},
		{"missing", nil, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			api, c := newConnAPI(t, &connFake{pageSize: 2, users: users})
			var got []string
			ok, err := c.ConnectionInstances(context.Background(), tt.id, collect(t, &got))
			if err != nil || ok != tt.ok || !slices.Equal(got, tt.want) {
				t.Errorf("ConnectionInstances(%s) = %v, %v, %v; want %v, %v, nil", tt.id, got, ok, err, tt.want, tt.ok)
			}
			calls := api.calls()
			if len(calls) != tt.requests {
				t.Fatalf("%d requests, want %d", len(calls), tt.requests)
			}
			if calls[0].Variables["after"] != nil || calls[0].Variables["first"] != float64(PageSize) || calls[0].str("id") != tt.id {
				t.Errorf("first request variables %v", calls[0].Variables)
			}
		})
	}
}

func TestConnectionInstancesBadCursor(t *testing.T) {
	for _, stuck := range []string{"cursor:2", "weird"} {
		t.Run(stuck, func(t *testing.T) {
			api, c := newConnAPI(t, &connFake{pageSize: 2, users: map[string][]string{"C": {"I1", "I2", "I3", "I4", "I5"}}, stuck: stuck})
			var got []string
			ok, err := c.ConnectionInstances(context.Background(), "C", collect(t, &got))
			e := mustError(t, err)
			if e.Kind != Invalid || ok {
				t.Errorf("= %v, %v; want an invalid error", ok, err)
			}
			if n := len(api.calls()); n != 2 {
				t.Errorf("%d requests, want 2 (stop when the cursor repeats)", n)
			}
		})
	}
}

func TestScopedConnectionInstances(t *testing.T) {
	f := &connFake{
		pageSize: 2,
		scoped:   map[string][]string{"S": {"C1", "C2", "Cgone", "C3"}},
		users:    map[string][]string{"C1": {"I1", "I2", "I3"}, "C2": {}, "C3": {"I4"}},
	}
	api, c := newConnAPI(t, f)
	var got []string
	err := c.ScopedConnectionInstances(context.Background(), "S", collect(t, &got))
	if want := []string{"I1", "I2", "I3", "I4"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ScopedConnectionInstances = %v, %v; want %v", got, err, want)
	}
	var scopedAfter []any
	for _, req := range api.calls() {
		if req.OperationName == "ScopedConfigVariableCustomerVariables" {
			if req.str("scopedId") != "S" {
				t.Errorf("scopedId = %v", req.Variables["scopedId"])
			}
			scopedAfter = append(scopedAfter, req.Variables["after"])
		}
	}
	if want := []any{nil, cursor(2)}; !slices.Equal(scopedAfter, want) {
		t.Errorf("scoped pages asked after %v, want %v", scopedAfter, want)
	}

	got = nil
	err = c.ScopedConnectionInstances(context.Background(), "unknown", collect(t, &got))
	if err != nil || len(got) != 0 {
		t.Errorf("unknown scoped variable = %v, %v; want none", got, err)
	}
}

func TestScopedConnectionInstancesErrors(t *testing.T) {
	t.Run("customer variable fails", func(t *testing.T) {
		_, c := newConnAPI(t, &connFake{pageSize: 2,
			scoped: map[string][]string{"S": {"C1", "C2"}},
			users:  map[string][]string{"C1": {"I1"}, "C2": {"I2"}},
			fail:   "C2"})
		var got []string
		err := c.ScopedConnectionInstances(context.Background(), "S", collect(t, &got))
		if KindOf(err) != Transient || !strings.Contains(err.Error(), "customer connection C2") {
			t.Errorf("= %v; want a transient error naming C2", err)
		}
	})
	t.Run("stuck cursor", func(t *testing.T) {
		_, c := newConnAPI(t, &connFake{pageSize: 1, stuck: "same",
			scoped: map[string][]string{"S": {"C1", "C2", "C3"}}})
		err := c.ScopedConnectionInstances(context.Background(), "S", func(ListPage) error { return nil })
		if e := mustError(t, err); e.Kind != Invalid || e.Op != "ScopedConfigVariableCustomerVariables" {
			t.Errorf("= %v; want an invalid error", err)
		}
	})
}

func TestCustomerInstances(t *testing.T) {
	all := []string{"I1", "I2", "I3"}
	api, c := newConnAPI(t, &connFake{pageSize: 2, users: map[string][]string{"Q3VzdG9tZXI6MQ==": all}})
	var got []string
	err := c.CustomerInstances(context.Background(), "Q3VzdG9tZXI6MQ==", collect(t, &got))
	if err != nil || !slices.Equal(got, all) {
		t.Errorf("CustomerInstances = %v, %v; want %v", got, err, all)
	}
	if n := len(api.calls()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}

	stuck := newFakeAPI(t, func(req gqlRequest) reply {
		return dataReply(t, map[string]any{"instances": map[string]any{
			"nodes": []any{listNode("I1", 3, "x", 0, 100)}, "pageInfo": map[string]any{"hasNextPage": true, "endCursor": "same"}}})
	})
	c = mustNew(t, Options{URL: stuck.srv.URL, Token: "tok"})
	err = c.CustomerInstances(context.Background(), "Q3VzdG9tZXI6MQ==", func(ListPage) error { return nil })
	if e := mustError(t, err); e.Kind != Invalid {
		t.Errorf("stuck cursor: %v; want an invalid error", err)
	}
}
