package graphql

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listNode is one instance of a ListInstances answer.
func listNode(id string, version int, externalID any) map[string]any {
	return map[string]any{
		"id": id, "deployedVersion": version, "lastDeployedAt": nil, "needsDeploy": version%2 == 0,
		"updatedAt": "2026-11-20T10:00:00.5+00:00", "customer": map[string]any{"externalId": externalID},
	}
}

func listReply(t *testing.T, nodes []any, hasNext bool, endCursor any, total int) reply {
	t.Helper()
	return dataReply(t, map[string]any{"instances": map[string]any{
		"nodes":      nodes,
		"pageInfo":   map[string]any{"hasNextPage": hasNext, "endCursor": endCursor},
		"totalCount": total,
	}})
}

func TestListInstances(t *testing.T) {
	api := newFakeAPI(t, func(req gqlRequest) reply {
		if req.Variables["first"] != float64(PageSize) {
			t.Errorf("first = %v, want %d", req.Variables["first"], PageSize)
		}
		switch after := req.Variables["after"]; after {
		case nil:
			return listReply(t, []any{listNode("I1", 1, "acme-001"), nil, listNode("I2", 2, nil)}, true, "c1", 3)
		case "c1":
			return listReply(t, []any{listNode("I3", 3, "")}, false, "c2", 3)
		default:
			t.Errorf("unexpected after %v", after)
			return reply{status: 400}
		}
	})
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})

	page, err := c.ListInstances(context.Background(), "")
	if err != nil {
		t.Fatalf("first page: %v", err)
	}
	if page.Next != "c1" || page.TotalCount != 3 || len(page.Instances) != 2 {
		t.Fatalf("first page = %+v, want 2 instances, next c1, total 3", page)
	}
	want := InstanceSummary{ID: "I1", DeployedVersion: 1, UpdatedAt: time.Date(2026, 11, 20, 10, 0, 0, 5e8, time.UTC), CustomerExternalID: "acme-001"}
	if got := page.Instances[0]; got.ID != want.ID || got.DeployedVersion != 1 || got.NeedsDeploy || got.LastDeployedAt != nil ||
		!got.UpdatedAt.Equal(want.UpdatedAt) || got.CustomerExternalID != "acme-001" {
		t.Errorf("first instance = %+v, want %+v", got, want)
	}
	if got := page.Instances[1]; got.ID != "I2" || got.CustomerExternalID != "" || !got.NeedsDeploy {
		t.Errorf("second instance = %+v, want I2 without external id", got)
	}

	page, err = c.ListInstances(context.Background(), page.Next)
	if err != nil {
		t.Fatalf("second page: %v", err)
	}
	if page.Next != "" || len(page.Instances) != 1 || page.Instances[0].ID != "I3" {
		t.Errorf("last page = %+v, want I3 and no next cursor", page)
	}
	if !strings.Contains(api.calls()[0].Query, "isSystem: false") {
		t.Errorf("ListInstances does not exclude system instances: %s", api.calls()[0].Query)
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
				return listReply(t, []any{listNode("I1", 1, nil)}, true, tt.endCursor, 10)
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

// connFake serves CustomerConfigVariableInstances and
// ScopedConfigVariableCustomerVariables, pageSize items a page.
type connFake struct {
	t        *testing.T
	pageSize int
	// users maps a customer config variable to the instances using it; a
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
	page := func(all []string) map[string]any {
		end := min(offset+f.pageSize, len(all))
		var nodes []any
		for _, id := range all[min(offset, end):end] {
			nodes = append(nodes, map[string]any{"id": id})
		}
		var endCursor any = cursor(end)
		if f.stuck != "" {
			endCursor = f.stuck
		}
		return map[string]any{"nodes": nodes, "pageInfo": map[string]any{"hasNextPage": end < len(all), "endCursor": endCursor}}
	}
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
		return dataReply(f.t, map[string]any{"customerConfigVariable": map[string]any{"id": id, "instances": page(users)}})
	case "ScopedConfigVariableCustomerVariables":
		return dataReply(f.t, map[string]any{"customerConfigVariables": page(f.scoped[req.str("scopedId")])})
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

func TestInstancesUsingCustomerConfigVariable(t *testing.T) {
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
			got, ok, err := c.InstancesUsingCustomerConfigVariable(context.Background(), tt.id)
			if err != nil || ok != tt.ok || !slices.Equal(got, tt.want) {
				t.Errorf("InstancesUsingCustomerConfigVariable(%s) = %v, %v, %v; want %v, %v, nil", tt.id, got, ok, err, tt.want, tt.ok)
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

func TestInstancesUsingCustomerConfigVariableBadCursor(t *testing.T) {
	for _, stuck := range []string{"cursor:2", "weird"} {
		t.Run(stuck, func(t *testing.T) {
			api, c := newConnAPI(t, &connFake{pageSize: 2, users: map[string][]string{"C": {"I1", "I2", "I3", "I4", "I5"}}, stuck: stuck})
			got, ok, err := c.InstancesUsingCustomerConfigVariable(context.Background(), "C")
			e := mustError(t, err)
			if e.Kind != Invalid || ok || got != nil {
				t.Errorf("= %v, %v, %v; want an invalid error", got, ok, err)
			}
			if n := len(api.calls()); n != 2 {
				t.Errorf("%d requests, want 2 (stop when the cursor repeats)", n)
			}
		})
	}
}

func TestInstancesUsingScopedConfigVariable(t *testing.T) {
	f := &connFake{
		pageSize: 2,
		scoped:   map[string][]string{"S": {"C1", "C2", "Cgone", "C3"}},
		users:    map[string][]string{"C1": {"I1", "I2", "I3"}, "C2": {}, "C3": {"I4"}},
	}
	api, c := newConnAPI(t, f)
	got, err := c.InstancesUsingScopedConfigVariable(context.Background(), "S")
	if want := []string{"I1", "I2", "I3", "I4"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("InstancesUsingScopedConfigVariable = %v, %v; want %v", got, err, want)
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

	got, err = c.InstancesUsingScopedConfigVariable(context.Background(), "unknown")
	if err != nil || len(got) != 0 {
		t.Errorf("unknown scoped variable = %v, %v; want none", got, err)
	}
}

func TestInstancesUsingScopedConfigVariableErrors(t *testing.T) {
	t.Run("customer variable fails", func(t *testing.T) {
		_, c := newConnAPI(t, &connFake{pageSize: 2,
			scoped: map[string][]string{"S": {"C1", "C2"}},
			users:  map[string][]string{"C1": {"I1"}, "C2": {"I2"}},
			fail:   "C2"})
		got, err := c.InstancesUsingScopedConfigVariable(context.Background(), "S")
		if got != nil || KindOf(err) != Transient || !strings.Contains(err.Error(), "customer connection C2") {
			t.Errorf("= %v, %v; want a transient error naming C2", got, err)
		}
	})
	t.Run("stuck cursor", func(t *testing.T) {
		_, c := newConnAPI(t, &connFake{pageSize: 1, stuck: "same",
			scoped: map[string][]string{"S": {"C1", "C2", "C3"}}})
		got, err := c.InstancesUsingScopedConfigVariable(context.Background(), "S")
		if e := mustError(t, err); got != nil || e.Kind != Invalid || e.Op != "ScopedConfigVariableCustomerVariables" {
			t.Errorf("= %v, %v; want an invalid error", got, err)
		}
	})
}

func TestCustomerInstances(t *testing.T) {
	all := []string{"I1", "I2", "I3"}
	api := newFakeAPI(t, func(req gqlRequest) reply {
		if req.OperationName != "ListCustomerInstances" || req.str("customer") != "Q3VzdG9tZXI6MQ==" {
			t.Errorf("request %s %v", req.OperationName, req.Variables)
		}
		offset := 0
		if req.Variables["after"] != nil {
			offset, _ = strconv.Atoi(strings.TrimPrefix(req.str("after"), "cursor:"))
		}
		end := min(offset+2, len(all))
		var nodes []any
		for _, id := range all[offset:end] {
			nodes = append(nodes, map[string]any{"id": id})
		}
		return dataReply(t, map[string]any{"instances": map[string]any{
			"nodes": nodes, "pageInfo": map[string]any{"hasNextPage": end < len(all), "endCursor": cursor(end)}}})
	})
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
	got, err := c.CustomerInstances(context.Background(), "Q3VzdG9tZXI6MQ==")
	if err != nil || !slices.Equal(got, all) {
		t.Errorf("CustomerInstances = %v, %v; want %v", got, err, all)
	}
	if n := len(api.calls()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}

	stuck := newFakeAPI(t, func(req gqlRequest) reply {
		return dataReply(t, map[string]any{"instances": map[string]any{
			"nodes": []any{map[string]any{"id": "I1"}}, "pageInfo": map[string]any{"hasNextPage": true, "endCursor": "same"}}})
	})
	c = mustNew(t, Options{URL: stuck.srv.URL, Token: "tok"})
	got, err = c.CustomerInstances(context.Background(), "Q3VzdG9tZXI6MQ==")
	if e := mustError(t, err); got != nil || e.Kind != Invalid {
		t.Errorf("stuck cursor: %v, %v; want an invalid error", got, err)
	}
}
