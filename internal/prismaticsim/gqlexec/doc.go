// Package gqlexec executes validated GraphQL queries over Go values.
//
// It is the engine behind the Prismatic simulator's /api endpoint, but knows
// nothing about Prismatic: it takes a schema parsed by gqlparser and a table
// of resolvers keyed by type and field name, and for every request it parses
// and validates the document with gqlparser, coerces the variables, and walks
// the selection set as the GraphQL specification's execution algorithm
// describes: field collection with named and inline fragments, aliases and
// field merging, @skip and @include, argument coercion (literals, variables,
// defaults, input objects, enum values, a single value given for a list),
// __typename, scalar and enum serialisation, and null propagation with one
// error (with path and location) per failed field.
//
// What it does not do: mutations and subscriptions (the operation is rejected
// if the schema has no root type for it, which gqlparser's validation already
// does), introspection (__schema and __type resolve to a field error), and
// parallel execution of fields (fields run in document order, one at a time,
// so resolvers need no locking of their own beyond what the caller does).
package gqlexec
