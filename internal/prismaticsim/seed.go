package prismaticsim

import (
	"fmt"
	"slices"
	"time"
)

// The demo data: three integrations, each with a few config variables
// (one or two of them connections) and two flows; Options.Customers
// customers with one instance of each integration, all deployed once; one
// system (test) instance per integration; and, for every other customer
// (the first, third, ...), a reusable Slack connection shared by that
// customer's "Salesforce Sync" and "Slack Alerts" instances.

type varTemplate struct {
	key, dataType, collectionType string
	def                           *string
	description                   string
	component                     string // connection variables: the component key
	schedule, timeZone            string
}

type integrationTemplate struct {
	name, category, description string
	version                     int
	vars                        []varTemplate
	flows                       []string
}

func ptr[T any](v T) *T { return &v }

var componentTemplates = []struct{ key, label, connKey, connLabel string }{
	{"salesforce", "Salesforce", "oauth2", "Salesforce OAuth 2.0"},
	{"slack", "Slack", "oauth2", "Slack OAuth 2.0"},
	{"hubspot", "HubSpot", "oauth2", "HubSpot OAuth 2.0"},
}

var integrationTemplates = []integrationTemplate{
	{
		name: "Salesforce Sync", category: "CRM", version: 3,
		description: "Keeps contacts and accounts in sync with Salesforce",
		vars: []varTemplate{
			{key: "salesforceConnection", dataType: "CONNECTION", component: "salesforce", description: "Salesforce account to sync with"},
			{key: "slackConnection", dataType: "CONNECTION", component: "slack", description: "Slack workspace for sync notifications"},
			{key: "syncFrequency", dataType: "SCHEDULE", def: ptr("0 * * * *"), schedule: "HOUR", timeZone: "America/Chicago", description: "When to sync"},
			{key: "syncContacts", dataType: "BOOLEAN", def: ptr("true"), description: "Sync contacts too"},
			{key: "batchSize", dataType: "NUMBER", def: ptr("200"), description: "Records per batch"},
			{key: "fieldMapping", dataType: "JSONFORM", def: ptr(`{"Email":"email","Name":"full_name"}`), description: "Salesforce field to app field"},
		},
		flows: []string{"Sync Contacts", "Sync Accounts"},
	},
	{
		name: "Slack Alerts", category: "Communication", version: 6,
		description: "Posts alerts to a Slack channel",
		vars: []varTemplate{
			{key: "slackConnection", dataType: "CONNECTION", component: "slack", description: "Slack workspace to post to"},
			{key: "channel", dataType: "STRING", def: ptr("#alerts"), description: "Channel to post to"},
			{key: "notifyOnError", dataType: "BOOLEAN", def: ptr("true"), description: "Also post errors"},
			{key: "mentionUsers", dataType: "STRING", collectionType: "VALUELIST", def: ptr(`["@oncall"]`), description: "Users to mention"},
			{key: "severity", dataType: "PICKLIST", def: ptr("warning"), description: "Lowest severity to post"},
		},
		flows: []string{"Post Alert", "Daily Digest"},
	},
	{
		name: "HubSpot Contacts", category: "Marketing", version: 2,
		description: "Imports contacts from a HubSpot list",
		vars: []varTemplate{
			{key: "hubspotConnection", dataType: "CONNECTION", component: "hubspot", description: "HubSpot portal"},
			{key: "listId", dataType: "STRING", def: ptr("all-contacts"), description: "HubSpot list to import"},
			{key: "pageSize", dataType: "NUMBER", def: ptr("100"), description: "Contacts per request"},
			{key: "lifecycleStages", dataType: "PICKLIST", collectionType: "VALUELIST", def: ptr(`["lead","customer"]`), description: "Stages to import"},
		},
		flows: []string{"Import Contacts", "Sync Deals"},
	},
}

var demoCustomers = []struct{ name, externalID string }{
	{"Acme Corp", "acme-001"},
	{"Globex Inc", "globex-002"},
	{"Initech", "initech-003"},
	{"Umbrella Corp", "umbrella-004"},
	{"Stark Industries", "stark-005"},
	{"Wayne Enterprises", "wayne-006"},
	{"Hooli", "hooli-007"},
	{"Soylent Co", "soylent-008"},
	{"Tyrell Corp", "tyrell-009"},
	{"Cyberdyne Systems", "cyberdyne-010"},
}

func customerName(i int) (name, externalID string) {
	if i < len(demoCustomers) {
		return demoCustomers[i].name, demoCustomers[i].externalID
	}
	return fmt.Sprintf("Customer %03d", i+1), fmt.Sprintf("customer-%03d", i+1)
}

// seed builds the demo model. base is the current time: everything seeded
// happened before it, at fixed offsets, so a fixed clock gives fixed
// timestamps.
func seed(seedValue uint64, customers int, base time.Time) *model {
	ids := newIDGen(seedValue)
	m := &model{
		ids:        ids,
		orgID:      ids.newID("Organization"),
		userID:     ids.newID("User"),
		webhookID:  ids.uuid(),
		byID:       map[string]*instance{},
		components: map[string]*connectionDef{},
	}
	for _, c := range componentTemplates {
		comp := &component{id: ids.newID("Component"), key: c.key, label: c.label}
		m.components[c.key] = &connectionDef{id: ids.newID("Connection"), key: c.connKey, label: c.connLabel, component: comp}
	}
	for i, t := range integrationTemplates {
		in := &integration{
			id: ids.newID("Integration"), name: t.name, description: t.description,
			versionNumber: t.version, category: t.category,
			createdAt: base.Add(-180*24*time.Hour + time.Duration(i)*24*time.Hour),
		}
		for _, v := range t.vars {
			in.vars = append(in.vars, m.newRequiredVar(v))
		}
		for _, f := range t.flows {
			in.flows = append(in.flows, &flowDef{id: ids.newID("IntegrationFlow"), name: f, stableKey: stableKey(f)})
		}
		m.integs = append(m.integs, in)
	}
	sharedSlack := &scopedVar{
		id: ids.newID("ScopedConfigVariable"), key: "sharedSlack", stableKey: "shared-slack",
		description: "A customer's Slack workspace, shared by its instances", status: "ACTIVE",
		connection: m.components["slack"],
	}
	m.scoped = append(m.scoped, sharedSlack)

	// Each instance is created one second after the previous one, a month
	// ago, and deployed five minutes after it was created.
	seq := 0
	created := func() time.Time {
		seq++
		return base.Add(-30*24*time.Hour + time.Duration(seq)*time.Second)
	}
	deploy := func(in *instance) {
		at := in.createdAt.Add(5 * time.Minute)
		m.deploy(in, at)
		in.lastExecutedAt = base.Add(-time.Duration(seq%50+1) * time.Minute)
		for _, f := range in.flows {
			f.lastExecutedAt = in.lastExecutedAt
		}
		for _, v := range in.vars {
			if c := v.own; c != nil {
				c.status, c.lastRefresh, c.refreshAt = "ACTIVE", base.Add(-10*time.Minute), base.Add(50*time.Minute)
				m.rotateToken(c)
			}
		}
	}

	m.testCustomer = &customer{id: ids.newID("Customer"), name: "Test Customer", description: "Owns the integrations' test instances"}
	for _, integ := range m.integs {
		in := m.newInstance(m.testCustomer, integ, integ.name+" (test instance)", created(), nil, 0)
		in.isSystem = true
		in.description = "System test instance of " + integ.name
		deploy(in)
	}

	frequencies := []string{"0 * * * *", "*/15 * * * *", "0 6 * * *"}
	for i := range customers {
		name, ext := customerName(i)
		c := &customer{
			id: ids.newID("Customer"), name: name, externalID: ptr(ext),
			description: "Demo customer " + name, labels: []string{"demo"},
		}
		m.customers = append(m.customers, c)
		var shared *customerConn
		if i%2 == 0 {
			shared = &customerConn{
				id: ids.newID("CustomerConfigVariable"), key: sharedSlack.key, customer: c, scoped: sharedSlack,
				lastConfigured: base.Add(-20 * 24 * time.Hour),
				cred: credential{
					status: "ACTIVE", lastRefresh: base.Add(-10 * time.Minute), refreshAt: base.Add(50 * time.Minute),
					inputs: m.newInputs(),
				},
			}
			sharedSlack.ccvs = append(sharedSlack.ccvs, shared)
			m.ccvs = append(m.ccvs, shared)
		}
		for _, integ := range m.integs {
			in := m.newInstance(c, integ, name+" - "+integ.name, created(), shared, 0)
			if v := in.variable("syncFrequency"); v != nil {
				v.value = ptr(frequencies[i%len(frequencies)])
			}
			if v := in.variable("channel"); v != nil {
				v.value = ptr("#" + ext + "-alerts")
			}
			deploy(in)
			// The third customer's HubSpot connection keeps failing to
			// refresh, so there is an ERROR connection to find.
			if i == 2 && integ.name == "HubSpot Contacts" {
				in.variable("hubspotConnection").own.status = "ERROR"
			}
			if i == 0 && m.demoID == "" {
				m.demoID = in.id
				in.labels = []string{"demo"}
			}
		}
	}
	return m
}

func stableKey(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == ' ':
			b[i] = '-'
		}
	}
	return string(b)
}

func (m *model) newRequiredVar(t varTemplate) *requiredVar {
	r := &requiredVar{
		id: m.ids.newID("RequiredConfigVariable"), key: t.key, dataType: t.dataType,
		collectionType: t.collectionType, defaultValue: t.def, description: t.description,
		scheduleType: t.schedule, timeZone: t.timeZone,
	}
	if t.component != "" {
		r.connection = m.components[t.component]
	}
	return r
}

// newInputs invents the credential fields of a connection. Every value
// contains SecretMarker.
func (m *model) newInputs() []*expression {
	return []*expression{
		{id: m.ids.newID("Expression"), name: "clientId", value: m.ids.secret(SecretMarker+"-client-", 6)},
		{id: m.ids.newID("Expression"), name: "clientSecret", value: m.ids.secret(SecretMarker+"-cs-", 12)},
		{id: m.ids.newID("Expression"), name: "accessToken", value: ""},
	}
}

// rotateToken gives a connection a new access token, as a refresh does.
func (m *model) rotateToken(c *credential) {
	if e := c.input("accessToken"); e != nil {
		e.value = m.ids.secret(SecretMarker+"-at-", 12)
	}
}

// newInstance creates an undeployed instance with every variable of its
// integration at its default value, connections PENDING (or backed by
// shared, for variables of shared's component), plus extra STRING
// variables extra001… when extra > 0.
func (m *model) newInstance(c *customer, integ *integration, name string, at time.Time, shared *customerConn, extra int) *instance {
	in := &instance{
		id: m.ids.newID("Instance"), name: name, enabled: true, needsDeploy: true,
		description: integ.name + " for " + c.name,
		createdAt:   at, updatedAt: at, labels: []string{},
		configState: "NEEDS_INSTANCE_CONFIGURATION", instanceType: "INTEGRATION", designedBy: "ORG",
		customer: c, integration: integ,
	}
	reqs := slices.Clone(integ.vars)
	for i := range extra {
		reqs = append(reqs, m.newRequiredVar(varTemplate{
			key: fmt.Sprintf("extra%03d", i+1), dataType: "STRING",
			def: ptr(fmt.Sprintf("value %d", i+1)), description: "Extra setting",
		}))
	}
	for _, r := range reqs {
		v := &configVar{id: m.ids.newID("InstanceConfigVariable"), inst: in, req: r, updatedAt: at}
		switch {
		case !r.isConnection():
			v.value = r.defaultValue
		case shared != nil && r.connection == shared.scoped.connection:
			v.shared = shared
			shared.vars = append(shared.vars, v)
		default:
			v.own = &credential{status: "PENDING", inputs: m.newInputs()}
		}
		in.vars = append(in.vars, v)
	}
	for _, f := range integ.flows {
		id := m.ids.newID("InstanceFlowConfig")
		in.flows = append(in.flows, &flowConfig{id: id, flow: f, webhookURL: "https://hooks.prismaticsim.invalid/trigger/" + id})
	}
	m.instances = append(m.instances, in)
	m.byID[in.id] = in
	return in
}

// deploy makes the stored configuration the running one.
func (m *model) deploy(in *instance, at time.Time) {
	in.deployedVersion++
	in.lastDeployedAt = at
	in.updatedAt = at
	in.needsDeploy = false
	in.configState = "FULLY_CONFIGURED"
	in.deployed = make(map[string]*string, len(in.vars))
	for _, v := range in.vars {
		var val *string
		if v.value != nil {
			val = ptr(*v.value)
		}
		in.deployed[v.req.key] = val
	}
}
