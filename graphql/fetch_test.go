package graphql

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const instID = "SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0"

var updatedAt = time.Date(2026, 11, 20, 10, 6, 30, 555555000, time.UTC)

// instanceJSON is an instance as GetInstance and GetInstanceConfigPage
// answer it, with one page of config variables.
func instanceJSON(id, name string, version int, nodes []any, endCursor string, hasNext bool) map[string]any {
	var end any
	if endCursor != "" {
		end = endCursor
	}
	if nodes == nil {
		nodes = []any{}
	}
	return map[string]any{
		"id": id, "name": name, "enabled": true, "deployedVersion": version, "needsDeploy": false,
		"lastDeployedAt": "2026-11-20T10:06:30.555555+00:00", "updatedAt": updatedAt.Format(time.RFC3339Nano),
		"customer":    map[string]any{"id": "Q3VzdG9tZXI6MQ==", "externalId": "acme-001", "name": "Acme Corp"},
		"integration": map[string]any{"id": "SW50ZWdyYXRpb246MQ==", "name": "Salesforce Sync", "versionNumber": 6},
		"configVariables": map[string]any{
			"nodes":    nodes,
			"pageInfo": map[string]any{"hasNextPage": hasNext, "endCursor": end},
		},
	}
}

// configVarJSON is the i-th config variable of the fake instance.
func configVarJSON(i int) map[string]any {
	return map[string]any{
		"id": fmt.Sprintf("icv-%03d", i), "value": fmt.Sprintf("value-%d", i), "status": "ACTIVE",
		"refreshAt": nil, "lastSuccessfulRefreshAt": nil,
		"requiredConfigVariable": map[string]any{"key": fmt.Sprintf("key-%03d", i), "dataType": "STRING"},
		"customerConfigVariable": nil,
	}
}

// instanceFake serves one instance with n config variables, paged by the
// requests' first/after. tamper, when set, may change the n-th answer's
// instance (n counts requests from 1) or replace the reply.
type instanceFake struct {
	t      *testing.T
	n      int
	tamper func(call int, req gqlRequest, inst map[string]any) *reply

	mu    sync.Mutex
	calls int
}

func (f *instanceFake) serve(req gqlRequest) reply {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	if req.str("id") != instID {
		return dataReply(f.t, map[string]any{"instance": nil})
	}
	first, _ := req.Variables["first"].(float64)
	if first != PageSize {
		f.t.Errorf("%s asked for first=%v, want %d", req.OperationName, req.Variables["first"], PageSize)
	}
	offset := 0
	switch req.OperationName {
	case "GetInstance":
		if _, ok := req.Variables["after"]; ok {
			f.t.Errorf("GetInstance sent after=%v", req.Variables["after"])
		}
	case "GetInstanceConfigPage":
		n, err := strconv.Atoi(strings.TrimPrefix(req.str("after"), "cursor:"))
		if err != nil {
			f.t.Errorf("GetInstanceConfigPage after=%q, not a cursor this fake gave", req.str("after"))
		}
		offset = n
	default:
		f.t.Errorf("unexpected operation %s", req.OperationName)
	}
	end := min(offset+int(first), f.n)
	var nodes []any
	for i := offset; i < end; i++ {
		nodes = append(nodes, configVarJSON(i))
	}
	inst := instanceJSON(instID, "Acme Corp - Salesforce Sync", 7, nodes, cursor(end), end < f.n)
	if f.tamper != nil {
		if rep := f.tamper(call, req, inst); rep != nil {
			return *rep
		}
	}
	return dataReply(f.t, map[string]any{"instance": inst})
}

// newInstanceAPI starts a fake serving f and a client for it.
func newInstanceAPI(t *testing.T, f *instanceFake) (*fakeAPI, *Client) {
	t.Helper()
	f.t = t
	api := newFakeAPI(t, f.serve)
	return api, mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
}

func pageInfo(inst map[string]any) map[string]any {
	return inst["configVariables"].(map[string]any)["pageInfo"].(map[string]any)
}

func nodes(inst map[string]any) []any {
	return inst["configVariables"].(map[string]any)["nodes"].([]any)
}

func TestFetchInstancePaging(t *testing.T) {
	tests := []struct {
		vars int
		want []string // operations
	}{
		{0, []string{"GetInstance"}},
		{1, []string{"GetInstance"}},
		{100, []string{"GetInstance"}},
		{101, []string{"GetInstance", "GetInstanceConfigPage"}},
		{250, []string{"GetInstance", "GetInstanceConfigPage", "GetInstanceConfigPage"}},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.vars), func(t *testing.T) {
			api, c := newInstanceAPI(t, &instanceFake{n: tt.vars})
			inst, err := c.FetchInstance(context.Background(), instID)
			if err != nil {
				t.Fatalf("FetchInstance: %v", err)
			}
			if got := api.ops(); !slices.Equal(got, tt.want) {
				t.Errorf("operations %v, want %v", got, tt.want)
			}
			for i, req := range api.calls()[1:] {
				if want := cursor((i + 1) * PageSize); req.str("after") != want {
					t.Errorf("page %d asked after %q, want %q", i+2, req.str("after"), want)
				}
			}
			if len(inst.ConfigVariables) != tt.vars {
				t.Fatalf("%d config variables, want %d", len(inst.ConfigVariables), tt.vars)
			}
			for i, v := range inst.ConfigVariables {
				if want := fmt.Sprintf("key-%03d", i); v.RequiredConfigVariable.Key != want || v.Value == nil || *v.Value != fmt.Sprintf("value-%d", i) {
					t.Fatalf("config variable %d is %s=%v, want %s in order", i, v.RequiredConfigVariable.Key, v.Value, want)
				}
			}
		})
	}
}

func TestFetchInstanceFields(t *testing.T) {
	_, c := newInstanceAPI(t, &instanceFake{n: 2, tamper: func(call int, req gqlRequest, inst map[string]any) *reply {
		ns := nodes(inst)
		ns[1] = map[string]any{
			"id": "icv-conn", "value": nil, "status": "ERROR",
			"refreshAt": "2026-11-20T11:00:00+00:00", "lastSuccessfulRefreshAt": "2026-11-20T10:00:00.000001+00:00",
			"requiredConfigVariable": map[string]any{"key": "salesforceConnection", "dataType": "CONNECTION"},
			"customerConfigVariable": map[string]any{"id": "Q3VzdG9tZXJDb25maWdWYXJpYWJsZTox"},
		}
		return nil
	}})
	inst, err := c.FetchInstance(context.Background(), instID)
	if err != nil {
		t.Fatalf("FetchInstance: %v", err)
	}
	if inst.ID != instID || inst.Name != "Acme Corp - Salesforce Sync" || !inst.Enabled || inst.DeployedVersion != 7 || inst.NeedsDeploy {
		t.Errorf("head = %+v", inst)
	}
	if !inst.UpdatedAt.Equal(updatedAt) || inst.LastDeployedAt == nil || !inst.LastDeployedAt.Equal(updatedAt) {
		t.Errorf("UpdatedAt %v, LastDeployedAt %v, want %v", inst.UpdatedAt, inst.LastDeployedAt, updatedAt)
	}
	if inst.Customer.ExternalId == nil || *inst.Customer.ExternalId != "acme-001" || inst.Customer.Name != "Acme Corp" {
		t.Errorf("Customer = %+v", inst.Customer)
	}
	if inst.Integration.VersionNumber == nil || *inst.Integration.VersionNumber != 6 || inst.Integration.Name != "Salesforce Sync" {
		t.Errorf("Integration = %+v", inst.Integration)
	}
	conn := inst.ConfigVariables[1]
	if conn.Value != nil || conn.Status == nil || *conn.Status != InstanceConfigVariableStatusError ||
		conn.RequiredConfigVariable.DataType != RequiredConfigVariableDataTypeConnection ||
		conn.CustomerConfigVariable == nil || conn.CustomerConfigVariable.Id != "Q3VzdG9tZXJDb25maWdWYXJpYWJsZTox" ||
		conn.RefreshAt == nil || conn.LastSuccessfulRefreshAt == nil || conn.LastSuccessfulRefreshAt.Nanosecond() != 1000 {
		t.Errorf("connection variable = %+v", conn)
	}
}

func TestFetchInstanceMissing(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		tamper func(call int, req gqlRequest, inst map[string]any) *reply
		ops    int
	}{
		{"unknown id", "SW5zdGFuY2U6bm9uZQ==", nil, 1},
		{"deleted while paging", instID, func(call int, req gqlRequest, inst map[string]any) *reply {
			if call == 2 {
				rep := dataReply(t, map[string]any{"instance": nil})
				return &rep
			}
			return nil
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, c := newInstanceAPI(t, &instanceFake{n: 250, tamper: tt.tamper})
			inst, err := c.FetchInstance(context.Background(), tt.id)
			if inst != nil || err != nil {
				t.Errorf("FetchInstance = %+v, %v; want nil, nil", inst, err)
			}
			if got := len(api.calls()); got != tt.ops {
				t.Errorf("%d requests, want %d", got, tt.ops)
			}
		})
	}
}

func TestFetchInstanceRestarts(t *testing.T) {
	tests := []struct {
		name   string
		change func(inst map[string]any)
	}{
		{"deployedVersion", func(inst map[string]any) { inst["deployedVersion"] = 8 }},
		{"needsDeploy", func(inst map[string]any) { inst["needsDeploy"] = true }},
		{"updatedAt", func(inst map[string]any) { inst["updatedAt"] = "2026-11-20T10:06:31+00:00" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// From the second request on the instance is the changed one.
			api, c := newInstanceAPI(t, &instanceFake{n: 250, tamper: func(call int, req gqlRequest, inst map[string]any) *reply {
				if call >= 2 {
					tt.change(inst)
				}
				return nil
			}})
			inst, err := c.FetchInstance(context.Background(), instID)
			if err != nil {
				t.Fatalf("FetchInstance: %v", err)
			}
			want := []string{"GetInstance", "GetInstanceConfigPage", "GetInstance", "GetInstanceConfigPage", "GetInstanceConfigPage"}
			if got := api.ops(); !slices.Equal(got, want) {
				t.Errorf("operations %v, want %v", got, want)
			}
			if len(inst.ConfigVariables) != 250 {
				t.Errorf("%d config variables, want 250 (not a mix of two fetches)", len(inst.ConfigVariables))
			}
		})
	}
}

func TestFetchInstanceKeepsChanging(t *testing.T) {
	api, c := newInstanceAPI(t, &instanceFake{n: 250, tamper: func(call int, req gqlRequest, inst map[string]any) *reply {
		inst["deployedVersion"] = call
		return nil
	}})
	inst, err := c.FetchInstance(context.Background(), instID)
	e := mustError(t, err)
	if inst != nil || e.Kind != Transient || !strings.Contains(err.Error(), "kept changing") || !strings.Contains(err.Error(), instID) {
		t.Errorf("FetchInstance = %v, %v; want a transient error saying the instance kept changing", inst, err)
	}
	var gets int
	for _, op := range api.ops() {
		if op == "GetInstance" {
			gets++
		}
	}
	if gets != maxRestarts+1 {
		t.Errorf("%d fetches started, want %d", gets, maxRestarts+1)
	}
}

func TestFetchInstanceInvalid(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(call int, req gqlRequest, inst map[string]any)
		msg    string
	}{
		{"empty key on the first page", func(call int, req gqlRequest, inst map[string]any) {
			nodes(inst)[3].(map[string]any)["requiredConfigVariable"] = map[string]any{"key": "", "dataType": "STRING"}
		}, "icv-003"},
		{"null requiredConfigVariable", func(call int, req gqlRequest, inst map[string]any) {
			nodes(inst)[0].(map[string]any)["requiredConfigVariable"] = nil
		}, "has no key"},
		{"empty key on a later page", func(call int, req gqlRequest, inst map[string]any) {
			if call == 3 {
				nodes(inst)[49].(map[string]any)["requiredConfigVariable"] = map[string]any{"key": "", "dataType": "STRING"}
			}
		}, "icv-249"},
		{"hasNextPage without endCursor", func(call int, req gqlRequest, inst map[string]any) {
			pageInfo(inst)["endCursor"] = nil
		}, "endCursor"},
		{"hasNextPage with empty endCursor", func(call int, req gqlRequest, inst map[string]any) {
			if call == 2 {
				pageInfo(inst)["endCursor"] = ""
			}
		}, "endCursor"},
		{"another instance", func(call int, req gqlRequest, inst map[string]any) {
			inst["id"] = "SW5zdGFuY2U6b3RoZXI="
		}, "SW5zdGFuY2U6b3RoZXI="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newInstanceAPI(t, &instanceFake{n: 250, tamper: func(call int, req gqlRequest, inst map[string]any) *reply {
				tt.tamper(call, req, inst)
				return nil
			}})
			inst, err := c.FetchInstance(context.Background(), instID)
			e := mustError(t, err)
			if inst != nil || e.Kind != Invalid || Retryable(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("FetchInstance = %v, %v (kind %v); want an invalid error mentioning %q", inst, err, e.Kind, tt.msg)
			}
		})
	}
}

func TestFetchInstanceSkipsNullNodes(t *testing.T) {
	_, c := newInstanceAPI(t, &instanceFake{n: 3, tamper: func(call int, req gqlRequest, inst map[string]any) *reply {
		nodes(inst)[1] = nil
		return nil
	}})
	inst, err := c.FetchInstance(context.Background(), instID)
	if err != nil {
		t.Fatalf("FetchInstance: %v", err)
	}
	if len(inst.ConfigVariables) != 2 || inst.ConfigVariables[1].Id != "icv-002" {
		t.Errorf("config variables %+v, want icv-000 and icv-002", inst.ConfigVariables)
	}
}

func TestFetchInstancePageError(t *testing.T) {
	api, c := newInstanceAPI(t, &instanceFake{n: 250, tamper: func(call int, req gqlRequest, inst map[string]any) *reply {
		if call == 3 {
			return &reply{status: 503, header: map[string]string{"Retry-After": "2"}}
		}
		return nil
	}})
	inst, err := c.FetchInstance(context.Background(), instID)
	e := mustError(t, err)
	if inst != nil || e.Kind != RateLimited || e.Op != "GetInstanceConfigPage" || RetryAfter(err) != 2*time.Second {
		t.Errorf("FetchInstance = %v, %v; want GetInstanceConfigPage rate limited for 2s", inst, err)
	}
	if got := len(api.calls()); got != 3 {
		t.Errorf("%d requests, want 3 (no retry inside FetchInstance)", got)
	}
}
