package graphql

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"sort"
	"strings"

	gql "github.com/Khan/genqlient/graphql"
)

// IntrospectionHeader is the request header Prismatic's API wants before it
// answers introspection (__schema, __type); its value is "true".
const IntrospectionHeader = "Prismatic-Docs-Introspection"

// IntrospectionQuery asks for the whole schema, as GraphQL tools do: every
// type with its fields, arguments, input fields, enum values, interfaces
// and possible types, type references nested seven levels deep.
const IntrospectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
  }
}
fragment FullType on __Type {
  kind
  name
  fields(includeDeprecated: true) {
    name
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name
  type { ...TypeRef }
  defaultValue
}
fragment TypeRef on __Type {
  kind
  name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

// Introspect runs IntrospectionQuery with the header Prismatic asks for and
// returns the answer's data (the object holding __schema). It goes through
// the token source and the rate limiter like every request.
func (c *Client) Introspect(ctx context.Context) (json.RawMessage, error) {
	var data json.RawMessage
	req := &gql.Request{Query: IntrospectionQuery, OpName: "IntrospectionQuery"}
	resp := &gql.Response{Data: &data}
	start := c.now()
	err := c.makeRequestWith(ctx, req, resp, http.Header{IntrospectionHeader: {"true"}})
	if c.observe != nil {
		c.observe(req.OpName, c.now().Sub(start), err)
	}
	return data, err
}

// TotalInstances sends the cheapest query there is (Probe) and returns the
// number of customer instances the token can see.
func (c *Client) TotalInstances(ctx context.Context) (int, error) {
	resp, err := Probe(ctx, c)
	if err != nil {
		return 0, err
	}
	return resp.Instances.TotalCount, nil
}

//go:embed operations/*.graphql
var operationFiles embed.FS

// OperationsSource returns every operation and fragment the client sends,
// as one GraphQL document: the files in graphql/operations that genqlient
// generated the client from.
func OperationsSource() string {
	names, _ := fs.Glob(operationFiles, "operations/*.graphql")
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		data, _ := operationFiles.ReadFile(n)
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String()
}
