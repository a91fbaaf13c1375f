// Package graphql is prismcache's client for Prismatic's GraphQL API.
//
// generated.go is written by genqlient from ../schema.graphql and the
// operations in operations/*.graphql (go generate ./...); never edit it by
// hand. The rest of the package is the transport genqlient calls through
// (Client: bearer auth, refresh-token exchange, per-request timeout, rate
// limiting, errors that name the operation) and helpers that page through
// the generated queries.
//
// genqlient's runtime package is also named graphql; files here import it as
// gql, and so should every other file that needs it.
package graphql
