// Package prismcache carries what the whole module shares at its root: the
// Prismatic GraphQL schema subset that genqlient generates the client from and
// that the simulator serves. The daemon itself lives in cmd/prismcache, the
// Redis contract in package cache.
package prismcache

import _ "embed"

//go:embed schema.graphql
var schema string

// Schema returns the text of schema.graphql, the Prismatic schema subset that
// graphql/generated.go was generated from. It is safe for concurrent use.
func Schema() string { return schema }
