package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/prismcache/prismcache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/schemacheck"
)

// onlineTimeout bounds the whole online check.
const onlineTimeout = 2 * time.Minute

// checkOnline authenticates against the configured API, runs one cheap
// query, introspects the schema and checks every operation prismcache sends
// against it. It prints one line per step and returns an error when any
// step fails or any field differs.
func checkOnline(ctx context.Context, cfg config.Config, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, onlineTimeout)
	defer cancel()
	api, err := graphql.New(graphql.Options{
		URL: cfg.PrismaticURL, Token: cfg.PrismaticToken, RefreshToken: cfg.PrismaticRefreshToken,
		TenantID: cfg.PrismaticTenantID, Timeout: cfg.PrismaticTimeout,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# online check of %s\n", api.Endpoint())
	n, err := api.TotalInstances(ctx)
	if err != nil {
		fmt.Fprintf(w, "FAIL  %v\n", err)
		return fmt.Errorf("the API did not answer a query%s", apiHint(err, cfg))
	}
	fmt.Fprintf(w, "ok    the token is accepted: the API answered a query (%d customer instances)\n", n)
	live, err := introspect(ctx, api)
	if err != nil {
		fmt.Fprintf(w, "FAIL  %v\n", err)
		return fmt.Errorf("the API's schema could not be read%s", apiHint(err, cfg))
	}
	fmt.Fprintf(w, "ok    introspection: %d types\n", userTypes(live))
	ours, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: prismcache.Schema()})
	if gerr != nil {
		return fmt.Errorf("schema.graphql built into this binary: %w", gerr)
	}
	rep, err := schemacheck.Check(ours, live, graphql.OperationsSource())
	if err != nil {
		return err
	}
	for _, d := range rep.Differences {
		fmt.Fprintf(w, "FAIL  %s\n", d)
	}
	for _, m := range rep.Refused {
		fmt.Fprintf(w, "FAIL  the API would refuse the operations: %s\n", m)
	}
	for _, f := range rep.Deprecated {
		fmt.Fprintf(w, "note  %s is deprecated in the API: it works today, but may go\n", f)
	}
	if !rep.OK() {
		return fmt.Errorf("the API's schema differs from the schema.graphql this prismcache was built with in %d field(s) its %d operations use (listed above): "+
			"it may misread what the API returns. Look for a newer prismcache; in the source tree, prismcache schema pull rewrites schema.graphql from the API, then go generate ./...",
			len(rep.Differences), len(rep.Operations))
	}
	fmt.Fprintf(w, "ok    %d operations checked against the API's schema: every field they use has the type schema.graphql gives it\n", len(rep.Operations))
	return nil
}

// introspect reads the API's schema.
func introspect(ctx context.Context, api *graphql.Client) (*ast.Schema, error) {
	data, err := api.Introspect(ctx)
	if err != nil {
		return nil, fmt.Errorf("introspection (with the header %s: true): %w", graphql.IntrospectionHeader, err)
	}
	return schemacheck.FromIntrospection(data)
}

// apiHint says what to do about a failed API call, after a colon, or "".
func apiHint(err error, cfg config.Config) string {
	var e *graphql.Error
	if !errors.As(err, &e) {
		return ""
	}
	switch e.Kind {
	case graphql.Unauthorized:
		if cfg.PrismaticRefreshToken != "" {
			return ": the refresh token was refused — create a new one (prism me:token --type refresh), and check that --prismatic-url is the stack it belongs to (" + cfg.PrismaticURL + ")"
		}
		return ": the access token was refused — access tokens expire; prefer a refresh token (PRISMATIC_REFRESH_TOKEN, from prism me:token --type refresh), and check that --prismatic-url is the stack it belongs to (" + cfg.PrismaticURL + ")"
	case graphql.Forbidden:
		return ": the token's user may not read instances — use a token of an organization user who can, and check --prismatic-tenant-id"
	case graphql.RateLimited:
		return ": the API is throttling this token; try again in a minute"
	case graphql.Transient:
		return ": is --prismatic-url (" + cfg.PrismaticURL + ") reachable from here?"
	}
	return ""
}

// userTypes counts a schema's types other than the built-in ones.
func userTypes(s *ast.Schema) int {
	n := 0
	for _, d := range s.Types {
		if !d.BuiltIn {
			n++
		}
	}
	return n
}
