package graphql

import (
	"context"
	"fmt"
	"time"
)

// InstanceSummary is the light view of an instance the reconciler compares
// with the cache.
type InstanceSummary struct {
	ID                 string
	Enabled            bool
	DeployedVersion    int
	LastDeployedAt     *time.Time
	NeedsDeploy        bool
	UpdatedAt          time.Time
	CustomerExternalID string
}

// ListPage is one page of ListInstances.
type ListPage struct {
	Instances  []InstanceSummary
	Next       string // cursor of the next page, "" after the last
	TotalCount int
}

// ListInstances returns one page of customer instances (system instances
// excluded) after the cursor ("" for the first page).
func (c *Client) ListInstances(ctx context.Context, after string) (ListPage, error) {
	var cursor *string
	if after != "" {
		cursor = &after
	}
	resp, err := ListInstances(ctx, c, PageSize, cursor)
	if err != nil {
		return ListPage{}, err
	}
	conn := resp.Instances
	page := ListPage{TotalCount: conn.TotalCount, Instances: make([]InstanceSummary, 0, len(conn.Nodes))}
	for _, n := range conn.Nodes {
		if n == nil {
			continue
		}
		s := InstanceSummary{ID: n.Id, Enabled: n.Enabled, DeployedVersion: n.DeployedVersion, LastDeployedAt: n.LastDeployedAt,
			NeedsDeploy: n.NeedsDeploy, UpdatedAt: n.UpdatedAt}
		if n.Customer.ExternalId != nil {
			s.CustomerExternalID = *n.Customer.ExternalId
		}
		page.Instances = append(page.Instances, s)
	}
	if conn.PageInfo.HasNextPage {
		if conn.PageInfo.EndCursor == nil || *conn.PageInfo.EndCursor == "" || *conn.PageInfo.EndCursor == after {
			return ListPage{}, &Error{Op: "ListInstances", Kind: Invalid, Message: "hasNextPage is true but endCursor does not move"}
		}
		page.Next = *conn.PageInfo.EndCursor
	}
	return page, nil
}

// InstancesUsingCustomerConfigVariable returns the ids of the instances that
// use the reusable customer connection id, and false when no such variable
// exists.
func (c *Client) InstancesUsingCustomerConfigVariable(ctx context.Context, id string) ([]string, bool, error) {
	var ids []string
	var cursor *string
	for pages := 0; ; pages++ {
		resp, err := CustomerConfigVariableInstances(ctx, c, id, PageSize, cursor)
		if err != nil {
			return nil, false, err
		}
		if resp.CustomerConfigVariable == nil {
			return nil, false, nil
		}
		conn := resp.CustomerConfigVariable.Instances
		for _, n := range conn.Nodes {
			if n != nil {
				ids = append(ids, n.Id)
			}
		}
		if !conn.PageInfo.HasNextPage {
			return ids, true, nil
		}
		if conn.PageInfo.EndCursor == nil || (cursor != nil && *conn.PageInfo.EndCursor == *cursor) || pages > 1000 {
			return nil, false, &Error{Op: "CustomerConfigVariableInstances", Kind: Invalid, Message: "hasNextPage is true but endCursor does not move"}
		}
		cursor = conn.PageInfo.EndCursor
	}
}

// InstancesUsingScopedConfigVariable returns the ids of the instances that use
// any customer connection made from the org-level connection id, each once.
func (c *Client) InstancesUsingScopedConfigVariable(ctx context.Context, id string) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	var cursor *string
	for pages := 0; ; pages++ {
		resp, err := ScopedConfigVariableCustomerVariables(ctx, c, id, PageSize, cursor)
		if err != nil {
			return nil, err
		}
		conn := resp.CustomerConfigVariables
		for _, n := range conn.Nodes {
			if n == nil {
				continue
			}
			got, _, err := c.InstancesUsingCustomerConfigVariable(ctx, n.Id)
			if err != nil {
				return nil, fmt.Errorf("customer connection %s: %w", n.Id, err)
			}
			for _, g := range got {
				if !seen[g] {
					seen[g] = true
					ids = append(ids, g)
				}
			}
		}
		if !conn.PageInfo.HasNextPage {
			return ids, nil
		}
		if conn.PageInfo.EndCursor == nil || (cursor != nil && *conn.PageInfo.EndCursor == *cursor) || pages > 1000 {
			return nil, &Error{Op: "ScopedConfigVariableCustomerVariables", Kind: Invalid, Message: "hasNextPage is true but endCursor does not move"}
		}
		cursor = conn.PageInfo.EndCursor
	}
}

// CustomerInstances returns the ids of every instance of the customer with
// global id customerID (system instances excluded).
func (c *Client) CustomerInstances(ctx context.Context, customerID string) ([]string, error) {
	var ids []string
	var cursor *string
	for pages := 0; ; pages++ {
		resp, err := ListCustomerInstances(ctx, c, customerID, PageSize, cursor)
		if err != nil {
			return nil, err
		}
		conn := resp.Instances
		for _, n := range conn.Nodes {
			if n != nil {
				ids = append(ids, n.Id)
			}
		}
		if !conn.PageInfo.HasNextPage {
			return ids, nil
		}
		if conn.PageInfo.EndCursor == nil || (cursor != nil && *conn.PageInfo.EndCursor == *cursor) || pages > 1000 {
			return nil, &Error{Op: "ListCustomerInstances", Kind: Invalid, Message: "hasNextPage is true but endCursor does not move"}
		}
		cursor = conn.PageInfo.EndCursor
	}
}
