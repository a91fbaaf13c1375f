package refresh

import (
	"fmt"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
)

// ToDoc turns a fetched instance into the document the cache stores. The
// values of connections and credentials are left out: they are secrets.
// Duplicate keys are an error: the API promises one variable per key; so is
// a Partial instance from a listing, which lacks some of its variables.
func ToDoc(inst *graphql.Instance) (*cache.Doc, error) {
	if inst.Partial {
		return nil, fmt.Errorf("instance %s: only part of its config variables is known", inst.ID)
	}
	d := &cache.Doc{
		ID:              inst.ID,
		Name:            inst.Name,
		Enabled:         inst.Enabled,
		NeedsDeploy:     inst.NeedsDeploy,
		DeployedVersion: inst.DeployedVersion,
		LastDeployedAt:  utc(inst.LastDeployedAt),
		Customer: cache.Customer{
			ID:         inst.Customer.Id,
			ExternalID: deref(inst.Customer.ExternalId),
			Name:       inst.Customer.Name,
		},
		Integration: cache.Integration{
			ID:   inst.Integration.Id,
			Name: inst.Integration.Name,
		},
		Config: make(map[string]cache.ConfigValue, len(inst.ConfigVariables)),
	}
	if !inst.UpdatedAt.IsZero() {
		t := inst.UpdatedAt.UTC()
		d.UpdatedAt = &t
	}
	if inst.Integration.VersionNumber != nil {
		d.Integration.VersionNumber = *inst.Integration.VersionNumber
	}
	for _, cv := range inst.ConfigVariables {
		key := cv.RequiredConfigVariable.Key
		if _, dup := d.Config[key]; dup {
			return nil, fmt.Errorf("instance %s: config variable key %q appears twice", inst.ID, key)
		}
		v := cache.ConfigValue{
			ID:                      cv.Id,
			Type:                    string(cv.RequiredConfigVariable.DataType),
			RefreshAt:               utc(cv.RefreshAt),
			LastSuccessfulRefreshAt: utc(cv.LastSuccessfulRefreshAt),
		}
		if cv.Status != nil {
			v.Status = string(*cv.Status)
		}
		if cv.CustomerConfigVariable != nil {
			v.CustomerConfigVariableID = cv.CustomerConfigVariable.Id
		}
		if v.Type != cache.TypeConnection && v.Type != cache.TypeCredential {
			v.Value = cv.Value
		}
		d.Config[key] = v
	}
	return d, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
