// Package gqlserver is the GraphQL server that gqlgen generates from the
// repository's schema.graphql (generated.go, models.go; configuration in
// gqlgen.yml): parsing, validation, execution and introspection. Package
// prismaticsim implements its ResolverRoot and serves it. Run
// `go generate ./...` after changing schema.graphql; a test in prismaticsim
// fails while the two differ. Only scalars.go is written by hand.
package gqlserver
