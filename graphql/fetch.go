package graphql

import (
	"context"
	"fmt"
	"time"
)

// PageSize is how many items each paged query asks for at most: the most
// Prismatic returns in one page. The client asks for fewer while the API
// refuses pages that large (see Client.PageSize).
const PageSize = 100

// maxConfigVariables bounds the config variables of one instance, so a
// misbehaving API cannot keep a worker paging forever.
const maxConfigVariables = 10000

// maxRestarts bounds how often a fetch starts over because the instance
// changed between its pages.
const maxRestarts = 3

// Instance is one instance with its config variables, assembled from as
// many pages as it takes.
type Instance struct {
	ID              string
	Name            string
	Enabled         bool
	DeployedVersion int
	NeedsDeploy     bool
	LastDeployedAt  *time.Time
	UpdatedAt       time.Time
	Customer        InstanceCustomer
	Integration     InstanceIntegration
	ConfigVariables []ConfigVariable
	// Partial is set on an instance from a listing whose config variables
	// go on past the page: ConfigVariables holds only the first page of
	// them, and only FetchInstance can tell the rest. FetchInstance never
	// returns a partial instance.
	Partial bool
}

// newInstance converts the fields of one instance and the first page of
// its config variables. The instance is Partial when more pages follow.
func newInstance(op string, f *InstanceFields) (*Instance, error) {
	inst := &Instance{
		ID: f.Id, Name: f.Name, Enabled: f.Enabled, DeployedVersion: f.DeployedVersion,
		NeedsDeploy: f.NeedsDeploy, LastDeployedAt: f.LastDeployedAt, UpdatedAt: f.UpdatedAt,
		Customer: f.Customer, Integration: f.Integration,
	}
	if f.Id == "" {
		return nil, &Error{Op: op, Kind: Invalid, Message: "an instance has no id"}
	}
	if err := inst.addPage(op, f.ConfigVariables); err != nil {
		return nil, err
	}
	inst.Partial = f.ConfigVariables.PageInfo.HasNextPage
	return inst, nil
}

// FetchInstance fetches instance id with every config variable, paging
// until hasNextPage is false. It returns nil and no error when the
// instance does not exist. If the instance changes between pages (its
// deploy markers differ), the fetch starts over, so the result is never a
// mix of two versions. Fetches that wait for the rate limiter at the same
// time share one request (see batch.go).
func (c *Client) FetchInstance(ctx context.Context, id string) (*Instance, error) {
	if c.limiter == nil {
		return c.fetchAlone(ctx, id)
	}
	return c.fetchBatched(ctx, id)
}

// fetchAlone is FetchInstance in requests of its own.
func (c *Client) fetchAlone(ctx context.Context, id string) (*Instance, error) {
	for restart := 0; ; restart++ {
		inst, changed, err := c.fetchOnce(ctx, id)
		if err != nil || !changed {
			return inst, err
		}
		if restart == maxRestarts {
			return nil, &Error{Op: "GetInstanceConfigPage", Kind: Transient,
				Message: fmt.Sprintf("instance %s kept changing while its config was paged", id)}
		}
	}
}

func (c *Client) fetchOnce(ctx context.Context, id string) (inst *Instance, changed bool, err error) {
	var first *GetInstanceResponse
	if _, err := c.withPageSize(func(size int) (err error) {
		first, err = GetInstance(ctx, c, id, size)
		return err
	}); err != nil {
		return nil, false, err
	}
	if first.Instance == nil {
		return nil, false, nil
	}
	if first.Instance.Id != id {
		return nil, false, &Error{Op: "GetInstance", Kind: Invalid,
			Message: fmt.Sprintf("asked for instance %s, got %s", id, first.Instance.Id)}
	}
	inst, err = newInstance("GetInstance", first.Instance)
	if err != nil {
		return nil, false, err
	}
	inst.Partial = false
	info := first.Instance.ConfigVariables.PageInfo
	return c.fetchRest(ctx, inst, info)
}

// fetchRest adds the config variables of inst that follow the page info
// describes, page by page. changed reports that the instance changed on
// the way (its deploy markers differ): the caller starts over.
func (c *Client) fetchRest(ctx context.Context, inst *Instance, info ConfigVariablePagePageInfo) (_ *Instance, changed bool, err error) {
	for info.HasNextPage {
		if info.EndCursor == nil || *info.EndCursor == "" {
			return nil, false, &Error{Op: "GetInstance", Kind: Invalid, Message: "hasNextPage is true but endCursor is empty"}
		}
		if len(inst.ConfigVariables) >= maxConfigVariables {
			return nil, false, &Error{Op: "GetInstanceConfigPage", Kind: Invalid,
				Message: fmt.Sprintf("instance %s has more than %d config variables", inst.ID, maxConfigVariables)}
		}
		var next *GetInstanceConfigPageResponse
		if _, err := c.withPageSize(func(size int) (err error) {
			next, err = GetInstanceConfigPage(ctx, c, inst.ID, size, *info.EndCursor)
			return err
		}); err != nil {
			return nil, false, err
		}
		if next.Instance == nil {
			return nil, false, nil // deleted while paging
		}
		h := next.Instance
		if h.DeployedVersion != inst.DeployedVersion || h.NeedsDeploy != inst.NeedsDeploy || !h.UpdatedAt.Equal(inst.UpdatedAt) {
			return nil, true, nil
		}
		if err := inst.addPage("GetInstanceConfigPage", h.ConfigVariables); err != nil {
			return nil, false, err
		}
		info = h.ConfigVariables.PageInfo
	}
	return inst, false, nil
}

func (inst *Instance) addPage(op string, page ConfigVariablePage) error {
	for _, n := range page.Nodes {
		if n == nil {
			continue
		}
		if n.RequiredConfigVariable.Key == "" {
			return &Error{Op: op, Kind: Invalid,
				Message: fmt.Sprintf("config variable %s of instance %s has no key", n.Id, inst.ID)}
		}
		inst.ConfigVariables = append(inst.ConfigVariables, *n)
	}
	return nil
}
