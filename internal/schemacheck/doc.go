// Package schemacheck compares the GraphQL schema prismcache was built
// against (schema.graphql) with the one a live Prismatic API serves, as its
// introspection tells it.
//
// FromIntrospection turns an introspection answer into a schema; Check
// validates the operations the client sends against it and names every
// field whose type differs; Pull rewrites schema.graphql so that the types
// it declares are the live API's, keeping its layout and its comments
// (prismcache check-config --online and prismcache schema pull).
package schemacheck
