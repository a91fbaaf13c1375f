package prismaticsim

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const testSecret = "whsec-test"

func TestAdminOperationsSendSignedWebhooks(t *testing.T) {
	rc := newReceiver(t, testSecret)
	sim, srv := newTestSim(t, Options{WebhookURL: rc.srv.URL, WebhookSecret: testSecret})
	demo := sim.DemoInstanceID()
	other := sim.Instances()[len(sim.Instances())-1].ID // Initech - HubSpot Contacts
	esc := url.PathEscape
	tests := []struct {
		name, method, route string
		body                any
		event               string
		instance            string // the payload's instance.id; "" for null
		connectionKey       string
		check               func(t *testing.T)
	}{
		{
			name: "change a config value", method: "PUT", route: "/admin/instances/" + esc(demo) + "/config/batchSize",
			body: map[string]string{"value": "500"}, event: "instance.updated", instance: demo,
			check: func(t *testing.T) {
				in, _ := sim.Instance(demo)
				dep, _ := sim.Deployed(demo)
				if v, _ := in.Value("batchSize"); *v.Value != "500" || !in.NeedsDeploy {
					t.Errorf("stored batchSize %v needsDeploy %v", *v.Value, in.NeedsDeploy)
				}
				if v, _ := dep.Value("batchSize"); *v.Value != "200" {
					t.Errorf("deployed batchSize %v, want the old 200", *v.Value)
				}
			},
		},
		{
			name: "deploy", method: "POST", route: "/admin/instances/" + esc(demo) + "/deploy",
			event: "instance.deployed", instance: demo,
			check: func(t *testing.T) {
				dep, _ := sim.Deployed(demo)
				if v, _ := dep.Value("batchSize"); *v.Value != "500" || dep.DeployedVersion != 2 || dep.NeedsDeploy {
					t.Errorf("deployed = %+v", dep)
				}
			},
		},
		{
			name: "disable", method: "POST", route: "/admin/instances/" + esc(demo) + "/disable",
			event: "instance.disabled", instance: demo,
			check: func(t *testing.T) {
				if dep, _ := sim.Deployed(demo); dep.Enabled {
					t.Error("still enabled")
				}
			},
		},
		{
			name: "enable", method: "POST", route: "/admin/instances/" + esc(demo) + "/enable",
			event: "instance.enabled", instance: demo,
		},
		{
			name: "refresh an instance connection", method: "POST", route: "/admin/instances/" + esc(other) + "/connections/hubspotConnection/refresh",
			event: "oauth2.token_refreshed", instance: other, connectionKey: "hubspotConnection",
			check: func(t *testing.T) {
				in, _ := sim.Instance(other)
				if v, _ := in.Value("hubspotConnection"); v.Status != "ACTIVE" || in.NeedsDeploy {
					t.Errorf("status %s needsDeploy %v", v.Status, in.NeedsDeploy)
				}
			},
		},
		{
			name: "break an instance connection", method: "POST", route: "/admin/instances/" + esc(other) + "/connections/hubspotConnection/break",
			event: "oauth2.token_refresh_failed", instance: other, connectionKey: "hubspotConnection",
		},
		{
			name: "reconnect", method: "POST", route: "/admin/instances/" + esc(other) + "/connections/hubspotConnection/reconnect",
			event: "connection.updated", instance: other, connectionKey: "hubspotConnection",
		},
		{
			name: "delete", method: "DELETE", route: "/admin/instances/" + esc(other),
			event: "instance.deleted", instance: other,
			check: func(t *testing.T) {
				if _, err := sim.Instance(other); !errors.Is(err, ErrNotFound) {
					t.Errorf("Instance after delete: %v", err)
				}
			},
		},
	}
	var last time.Time
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, res := adminDo(t, srv.URL, tt.method, tt.route, tt.body)
			if status != http.StatusOK {
				t.Fatalf("status %d: %v", status, res)
			}
			if path(t, res, "webhooks", 0, "type") != tt.event || path(t, res, "webhooks", 0, "status") != float64(200) ||
				path(t, res, "webhooks", 0, "state") != "delivered" {
				t.Errorf("webhooks = %v", res["webhooks"])
			}
			if path(t, res, "instance", "id") != tt.instance {
				t.Errorf("instance = %v", res["instance"])
			}
			got := rc.waitFor(t, tt.event, func(got []webhook) bool { return len(got) > i })
			wh := got[i]
			if wh.event != tt.event || wh.body["event_type"] != tt.event {
				t.Fatalf("webhook %s / %v, want %s", wh.event, wh.body["event_type"], tt.event)
			}
			if id := path(t, wh.body, "instance", "id"); id != tt.instance {
				t.Errorf("instance.id = %v, want %s", id, tt.instance)
			}
			wantKeys := []string{"integration", "customer", "parent_integration", "instance", "user", "event_type", "timestamp", "organization_id", "webhook_id"}
			if tt.connectionKey != "" {
				wantKeys = append(wantKeys, "connection")
				connID, _ := path(t, wh.body, "connection", "id").(string)
				if typ, _, _ := decodeGlobalID(connID); typ != "InstanceConfigVariable" || path(t, wh.body, "connection", "key") != tt.connectionKey {
					t.Errorf("connection = %v", wh.body["connection"])
				}
			}
			if keys := topKeys(t, wh.raw); !slices.Equal(keys, wantKeys) {
				t.Errorf("keys %v\nwant %v", keys, wantKeys)
			}
			ts, err := time.Parse(webhookTimeFormat, wh.body["timestamp"].(string))
			if err != nil || !ts.After(last) {
				t.Errorf("timestamp %v not after %v (the clock is fixed: each event must still be 1µs later)", wh.body["timestamp"], last)
			}
			last = ts
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	if st := sim.Stats(); st.WebhooksSent != int64(len(tests)) || st.WebhooksFailed != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestAdminCreateInstance(t *testing.T) {
	rc := newReceiver(t, "")
	sim, srv := newTestSim(t, Options{WebhookURL: rc.srv.URL})
	status, res := adminDo(t, srv.URL, "POST", "/admin/instances", map[string]any{"customer": "globex-002", "integration": "Slack Alerts", "name": "Globex - second Slack"})
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, res)
	}
	id := path(t, res, "instance", "id").(string)
	in, err := sim.Instance(id)
	if err != nil || in.DeployedVersion != 0 || !in.NeedsDeploy || in.Name != "Globex - second Slack" {
		t.Fatalf("created = %+v, %v", in, err)
	}
	if v, _ := in.Value("slackConnection"); v.Status != "PENDING" {
		t.Errorf("new connection status %s, want PENDING", v.Status)
	}
	if _, err := sim.Deployed(id); !errors.Is(err, ErrNotDeployed) {
		t.Errorf("Deployed of a new instance: %v", err)
	}
	got := rc.waitFor(t, "instance.created", func(got []webhook) bool { return len(got) == 1 })
	if got[0].event != "instance.created" || path(t, got[0].body, "instance", "id") != id {
		t.Errorf("webhook = %s %v", got[0].event, got[0].body)
	}
	// Shared connections: Acme's new Slack instance joins Acme's customer connection.
	res2, err := sim.CreateInstance(NewInstance{Customer: "acme-001", Integration: "Slack Alerts", Deploy: true})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res2.Instance.Value("slackConnection"); v.CustomerConfigVariableID == "" || v.Status != "ACTIVE" {
		t.Errorf("Acme's new instance slackConnection = %+v", v)
	}
	if len(res2.Webhooks) != 2 || res2.Webhooks[0].Type != "instance.created" || res2.Webhooks[1].Type != "instance.deployed" {
		t.Errorf("webhooks = %+v", res2.Webhooks)
	}
}

func TestSharedConnectionChangesEveryInstanceUsingIt(t *testing.T) {
	tests := []struct {
		shape        PayloadShape
		wantWebhooks int
		check        func(t *testing.T, wh webhook, ccvID string)
	}{
		{ShapeAuto, 1, func(t *testing.T, wh webhook, ccvID string) {
			if wh.body["instance"] != nil || path(t, wh.body, "connection", "id") != ccvID ||
				path(t, wh.body, "customer", "external_id") != "acme-001" {
				t.Errorf("body = %s", wh.raw)
			}
		}},
		{ShapeWithInstance, 2, func(t *testing.T, wh webhook, _ string) {
			if typ, _, _ := decodeGlobalID(path(t, wh.body, "connection", "id").(string)); wh.body["instance"] == nil || typ != "InstanceConfigVariable" {
				t.Errorf("body = %s", wh.raw)
			}
		}},
		{ShapeConnectionOnly, 2, func(t *testing.T, wh webhook, _ string) {
			if typ, _, _ := decodeGlobalID(path(t, wh.body, "connection", "id").(string)); wh.body["instance"] != nil || wh.body["customer"] != nil || typ != "InstanceConfigVariable" {
				t.Errorf("body = %s", wh.raw)
			}
		}},
	}
	for _, tt := range tests {
		t.Run("shape="+string(tt.shape), func(t *testing.T) {
			rc := newReceiver(t, testSecret)
			sim, srv := newTestSim(t, Options{WebhookURL: rc.srv.URL, WebhookSecret: testSecret})
			if status, _ := adminDo(t, srv.URL, "PUT", "/admin/payload-shape", map[string]any{"shape": tt.shape}); status != http.StatusOK {
				t.Fatalf("set shape: %d", status)
			}
			demo := sim.DemoInstanceID()
			var ccv CustomerConnection
			for _, c := range sim.CustomerConnections() {
				if slices.Contains(c.InstanceIDs, demo) {
					ccv = c
				}
			}
			res, err := sim.BreakConnection(demo, "slackConnection")
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Affected) != 2 || len(res.Webhooks) != tt.wantWebhooks {
				t.Fatalf("affected %v, webhooks %d", res.Affected, len(res.Webhooks))
			}
			got := rc.waitFor(t, "break webhooks", func(got []webhook) bool { return len(got) == tt.wantWebhooks })
			for _, wh := range got {
				if wh.event != "oauth2.token_refresh_failed" {
					t.Errorf("event %s", wh.event)
				}
				tt.check(t, wh, ccv.ID)
			}
			// Every instance using it shows ERROR through GraphQL, without
			// needing a deploy.
			for _, id := range ccv.InstanceIDs {
				data := mustQuery(t, srv.URL, `query($id: ID!) { instance(id: $id) { needsDeploy configVariables(status: "error") { nodes { requiredConfigVariable { key } } } } }`, map[string]any{"id": id})
				if path(t, data, "instance", "configVariables", "nodes", 0, "requiredConfigVariable", "key") != "slackConnection" ||
					path(t, data, "instance", "needsDeploy") != false {
					t.Errorf("instance %s = %v", id, data)
				}
				if dep, _ := sim.Deployed(id); func() string { v, _ := dep.Value("slackConnection"); return v.Status }() != "ERROR" {
					t.Errorf("deployed truth of %s not ERROR", id)
				}
			}
			data := mustQuery(t, srv.URL, `query($id: ID!) { customerConfigVariable(id: $id) { status isInUse instances { totalCount } } }`, map[string]any{"id": ccv.ID})
			if path(t, data, "customerConfigVariable", "status") != "ERROR" || path(t, data, "customerConfigVariable", "instances", "totalCount") != float64(2) {
				t.Errorf("ccv = %v", data)
			}
		})
	}
}

func TestAdminReadsAndErrors(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	demo := sim.DemoInstanceID()
	esc := url.PathEscape
	tests := []struct {
		name, method, route string
		body                any
		want                int
		wantErr             string
	}{
		{"list", "GET", "/admin/instances?customer=acme-001", nil, 200, ""},
		{"get", "GET", "/admin/instances/" + esc(demo), nil, 200, ""},
		{"get by bare uuid", "GET", "/admin/instances/" + func() string { _, u, _ := decodeGlobalID(demo); return u }(), nil, 200, ""},
		{"demo", "GET", "/admin/demo", nil, 200, ""},
		{"unknown instance", "POST", "/admin/instances/" + esc(globalID("Instance", "00000000-0000-4000-8000-000000000000")) + "/deploy", nil, 404, "not found"},
		{"unknown variable", "PUT", "/admin/instances/" + esc(demo) + "/config/nope", map[string]string{"value": "x"}, 404, "unknown config variable"},
		{"config on a connection", "PUT", "/admin/instances/" + esc(demo) + "/config/salesforceConnection", map[string]string{"value": "x"}, 400, "is a connection"},
		{"bad boolean", "PUT", "/admin/instances/" + esc(demo) + "/config/syncContacts", map[string]string{"value": "yes"}, 400, "invalid value"},
		{"missing value", "PUT", "/admin/instances/" + esc(demo) + "/config/syncContacts", map[string]string{}, 400, "value"},
		{"refresh a plain variable", "POST", "/admin/instances/" + esc(demo) + "/connections/batchSize/refresh", nil, 400, "not a connection"},
		{"create for unknown customer", "POST", "/admin/instances", map[string]string{"customer": "nobody", "integration": "Slack Alerts"}, 404, "customer"},
		{"create with unknown field", "POST", "/admin/instances", map[string]string{"customr": "acme-001"}, 400, "unknown field"},
		{"bad faults", "PUT", "/admin/faults", map[string]any{"errorRate": 2}, 400, "not in [0, 1]"},
		{"bad shape", "PUT", "/admin/payload-shape", map[string]any{"shape": "nope"}, 400, "invalid value"},
		{"wrong method", "DELETE", "/admin/demo", nil, 405, "method not allowed"},
		{"unknown route", "GET", "/admin/nope", nil, 404, "not found"},
		{"GET /api", "GET", "/api", nil, 405, "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := adminDo(t, srv.URL, tt.method, tt.route, tt.body)
			if status != tt.want {
				t.Fatalf("status %d, want %d: %v", status, tt.want, body)
			}
			if tt.wantErr != "" {
				if msg, _ := body["error"].(string); !strings.Contains(msg, tt.wantErr) {
					t.Errorf("error %q, want it to contain %q", msg, tt.wantErr)
				}
			}
		})
	}
	_, body := adminDo(t, srv.URL, "GET", "/admin/instances/"+esc(demo), nil)
	if path(t, body, "instance", "id") != demo || path(t, body, "deployed", "deployedVersion") != float64(1) {
		t.Errorf("get = %v", body)
	}
	_, body = adminDo(t, srv.URL, "GET", "/admin/instances?customer=acme-001", nil)
	if n := len(body["instances"].([]any)); n != 3 {
		t.Errorf("acme has %d instances, want 3", n)
	}
	_, body = adminDo(t, srv.URL, "GET", "/admin/demo", nil)
	if body["instanceId"] != demo || body["customerExternalId"] != "acme-001" {
		t.Errorf("demo = %v", body)
	}
}

func TestEventsAndStatsAdmin(t *testing.T) {
	sim, srv := newTestSim(t, Options{})
	demo := sim.DemoInstanceID()
	mustQuery(t, srv.URL, `query($id: ID!) { a: instance(id: $id) { id } b: instance(id: $id) { id } }`, map[string]any{"id": demo})
	if _, err := sim.Deploy(demo); err != nil {
		t.Fatal(err)
	}
	_, st := adminDo(t, srv.URL, "GET", "/admin/stats", nil)
	if st["graphqlRequests"] != float64(1) || st["instanceFetches"] != float64(2) || path(t, st, "instanceFetchesById", demo) != float64(2) {
		t.Errorf("stats = %v", st)
	}
	_, ev := adminDo(t, srv.URL, "GET", "/admin/events?limit=1", nil)
	if path(t, ev, "events", 0, "type") != "instance.deployed" || path(t, ev, "events", 0, "state") != "recorded" {
		t.Errorf("events = %v", ev)
	}
	_, st = adminDo(t, srv.URL, "POST", "/admin/stats/reset", nil)
	if st["graphqlRequests"] != float64(0) || len(sim.Stats().InstanceFetchesByID) != 0 {
		t.Errorf("after reset: %v", st)
	}
}
