package graphql

import (
	"context"
	"fmt"
	"time"
)

// PageSize is how many items each paged query asks for: the most Prismatic
// returns in one page.
const PageSize = 100

// maxConfigPages bounds the config-variable pages of one instance (10,000
// variables), so a misbehaving API cannot keep a worker paging forever.
const maxConfigPages = 100

// maxRestarts bounds how often a fetch starts over because the instance
// changed between its pages.
const maxRestarts = 3

// Instance is one instance with all of its config variables, assembled from
// as many pages as it takes.
type Instance struct {
	ID              string
	Name            string
	Enabled         bool
	DeployedVersion int
	NeedsDeploy     bool
	LastDeployedAt  *time.Time
	UpdatedAt       time.Time
	Customer        GetInstanceInstanceCustomer
	Integration     GetInstanceInstanceIntegration
	ConfigVariables []ConfigVariable
}

// FetchInstance fetches instance id with every config variable, paging 100
// at a time until hasNextPage is false. It returns nil and no error when the
// instance does not exist. If the instance changes between pages (its deploy
// markers differ), the fetch starts over, so the result is never a mix of two
// versions.
func (c *Client) FetchInstance(ctx context.Context, id string) (*Instance, error) {
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
	first, err := GetInstance(ctx, c, id, PageSize)
	if err != nil {
		return nil, false, err
	}
	if first.Instance == nil {
		return nil, false, nil
	}
	head := first.Instance
	if head.Id != id {
		return nil, false, &Error{Op: "GetInstance", Kind: Invalid,
			Message: fmt.Sprintf("asked for instance %s, got %s", id, head.Id)}
	}
	inst = &Instance{
		ID: head.Id, Name: head.Name, Enabled: head.Enabled, DeployedVersion: head.DeployedVersion,
		NeedsDeploy: head.NeedsDeploy, LastDeployedAt: head.LastDeployedAt, UpdatedAt: head.UpdatedAt,
		Customer: first.Instance.Customer, Integration: first.Instance.Integration,
	}
	page := first.Instance.ConfigVariables
	for n := 1; ; n++ {
		if err := inst.addPage(page); err != nil {
			return nil, false, err
		}
		if !page.PageInfo.HasNextPage {
			return inst, false, nil
		}
		if page.PageInfo.EndCursor == nil || *page.PageInfo.EndCursor == "" {
			return nil, false, &Error{Op: "GetInstance", Kind: Invalid, Message: "hasNextPage is true but endCursor is empty"}
		}
		if n == maxConfigPages {
			return nil, false, &Error{Op: "GetInstanceConfigPage", Kind: Invalid,
				Message: fmt.Sprintf("instance %s has more than %d pages of config variables", id, maxConfigPages)}
		}
		next, err := GetInstanceConfigPage(ctx, c, id, PageSize, *page.PageInfo.EndCursor)
		if err != nil {
			return nil, false, err
		}
		if next.Instance == nil {
			return nil, false, nil // deleted while paging
		}
		h := next.Instance
		if h.DeployedVersion != head.DeployedVersion || h.NeedsDeploy != head.NeedsDeploy || !h.UpdatedAt.Equal(head.UpdatedAt) {
			return nil, true, nil
		}
		page = next.Instance.ConfigVariables
	}
}

func (inst *Instance) addPage(page ConfigVariablePage) error {
	for _, n := range page.Nodes {
		if n == nil {
			continue
		}
		if n.RequiredConfigVariable.Key == "" {
			return &Error{Op: "GetInstance", Kind: Invalid,
				Message: fmt.Sprintf("config variable %s of instance %s has no key", n.Id, inst.ID)}
		}
		inst.ConfigVariables = append(inst.ConfigVariables, *n)
	}
	return nil
}
