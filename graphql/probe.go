package graphql

import "context"

// Probe sends the cheapest query there is and reports whether the API
// answered it. It goes through the rate limiter like any request.
func (c *Client) Probe(ctx context.Context) error {
	_, err := Probe(ctx, c)
	return err
}
