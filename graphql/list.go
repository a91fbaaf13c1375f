package graphql

import (
	"context"
	"fmt"
	"time"
)

// ListPage is one page of a listing of instances, each with what the
// cache stores of it: the same fields as FetchInstance, and the first page
// of its config variables (an instance with more is Partial).
type ListPage struct {
	Instances []*Instance
	// Next is the cursor of the next page, "" after the last.
	Next string
	// TotalCount is how many instances the whole listing has (0 for the
	// listings that do not count them).
	TotalCount int
	// Sent is when the request that answered the page was sent: what the
	// page shows is at least that recent, as a fetch started then would be.
	Sent time.Time
	// Size is the page size it was asked with.
	Size int
}

// maxListPages bounds one listing, so a misbehaving API cannot keep the
// client paging forever.
const maxListPages = 100000

// ListInstances returns one page of customer instances (system instances
// excluded) after the cursor ("" for the first page), each with its
// document.
func (c *Client) ListInstances(ctx context.Context, after string) (ListPage, error) {
	var sent sentAt
	ctx = withSentAt(ctx, &sent)
	var resp *ListInstancesResponse
	size, err := c.withPageSize(func(size int) (err error) {
		resp, err = ListInstances(ctx, c, size, optional(after))
		return err
	})
	if err != nil {
		return ListPage{}, err
	}
	conn := resp.Instances
	page, err := listPage("ListInstances", conn.Nodes, conn.PageInfo.HasNextPage, conn.PageInfo.EndCursor, after)
	page.TotalCount, page.Sent, page.Size = conn.TotalCount, sent.get(), size
	return page, err
}

// CustomerInstances calls fn with every page of the instances of the
// customer with global id customerID (system instances excluded), each
// with its document.
func (c *Client) CustomerInstances(ctx context.Context, customerID string, fn func(ListPage) error) error {
	return c.eachPage(ctx, "ListCustomerInstances", fn, func(ctx context.Context, size int, after string) (ListPage, bool, error) {
		resp, err := ListCustomerInstances(ctx, c, customerID, size, optional(after))
		if err != nil {
			return ListPage{}, false, err
		}
		conn := resp.Instances
		page, err := listPage("ListCustomerInstances", conn.Nodes, conn.PageInfo.HasNextPage, conn.PageInfo.EndCursor, after)
		return page, true, err
	})
}

// ConnectionInstances calls fn with every page of the instances that use
// the reusable customer connection id, each with its document, and
// returns false when no such connection exists.
func (c *Client) ConnectionInstances(ctx context.Context, id string, fn func(ListPage) error) (bool, error) {
	found := true
	err := c.eachPage(ctx, "CustomerConfigVariableInstances", fn, func(ctx context.Context, size int, after string) (ListPage, bool, error) {
		resp, err := CustomerConfigVariableInstances(ctx, c, id, size, optional(after))
		if err != nil {
			return ListPage{}, false, err
		}
		if resp.CustomerConfigVariable == nil {
			found = false
			return ListPage{}, false, nil
		}
		conn := resp.CustomerConfigVariable.Instances
		page, err := listPage("CustomerConfigVariableInstances", conn.Nodes, conn.PageInfo.HasNextPage, conn.PageInfo.EndCursor, after)
		return page, true, err
	})
	if err != nil {
		return false, err
	}
	return found, nil
}

// ScopedConnectionInstances calls fn with every page of the instances that
// use any customer connection made from the org-level connection id, each
// with its document: the customer connections made from it, then each
// one's instances. An instance using two of them is in two pages.
func (c *Client) ScopedConnectionInstances(ctx context.Context, id string, fn func(ListPage) error) error {
	var cursor string
	for pages := 0; ; pages++ {
		var resp *ScopedConfigVariableCustomerVariablesResponse
		if _, err := c.withPageSize(func(size int) (err error) {
			resp, err = ScopedConfigVariableCustomerVariables(ctx, c, id, size, optional(cursor))
			return err
		}); err != nil {
			return err
		}
		conn := resp.CustomerConfigVariables
		for _, n := range conn.Nodes {
			if n == nil {
				continue
			}
			if _, err := c.ConnectionInstances(ctx, n.Id, fn); err != nil {
				return fmt.Errorf("customer connection %s: %w", n.Id, err)
			}
		}
		next, err := nextCursor("ScopedConfigVariableCustomerVariables", conn.PageInfo.HasNextPage, conn.PageInfo.EndCursor, cursor, pages)
		if err != nil || next == "" {
			return err
		}
		cursor = next
	}
}

// eachPage pages through a listing: get asks for the page after a cursor
// at a page size (more=false: the listing does not exist, stop), and fn is
// called with each page.
func (c *Client) eachPage(ctx context.Context, op string, fn func(ListPage) error,
	get func(ctx context.Context, size int, after string) (page ListPage, more bool, err error)) error {
	after := ""
	for pages := 0; ; pages++ {
		var sent sentAt
		pctx := withSentAt(ctx, &sent)
		var page ListPage
		var more bool
		size, err := c.withPageSize(func(size int) (err error) {
			page, more, err = get(pctx, size, after)
			return err
		})
		if err != nil || !more {
			return err
		}
		page.Sent, page.Size = sent.get(), size
		if err := fn(page); err != nil {
			return err
		}
		if page.Next == "" {
			return nil
		}
		if pages >= maxListPages {
			return &Error{Op: op, Kind: Invalid, Message: fmt.Sprintf("more than %d pages", maxListPages)}
		}
		after = page.Next
	}
}

// listPage converts the nodes of one page and finds the next cursor.
func listPage(op string, nodes []*InstanceFields, hasNext bool, end *string, after string) (ListPage, error) {
	page := ListPage{Instances: make([]*Instance, 0, len(nodes))}
	for _, n := range nodes {
		if n == nil {
			continue
		}
		inst, err := newInstance(op, n)
		if err != nil {
			return ListPage{}, err
		}
		page.Instances = append(page.Instances, inst)
	}
	next, err := nextCursor(op, hasNext, end, after, 0)
	if err != nil {
		return ListPage{}, err
	}
	page.Next = next
	return page, nil
}

// nextCursor returns the cursor of the page after one that was asked for
// after after, "" when it was the last; pages counts the pages so far.
func nextCursor(op string, hasNext bool, end *string, after string, pages int) (string, error) {
	if !hasNext {
		return "", nil
	}
	if end == nil || *end == "" || *end == after || pages >= maxListPages {
		return "", &Error{Op: op, Kind: Invalid, Message: "hasNextPage is true but endCursor does not move"}
	}
	return *end, nil
}

// optional is nil for "", else a pointer to s.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
