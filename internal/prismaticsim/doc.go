// Package prismaticsim is an in-memory stand-in for Prismatic that answers
// the daemon as the real service does, as far as Prismatic documents its
// behaviour (docs/simulator.md says where it does not, and what the
// simulator chose).
//
// A Sim holds a seeded model of customers, integrations, instances, config
// variables, reusable customer connections and flow configs, and serves,
// from one http.Handler:
//
//   - POST /api: a real GraphQL endpoint over the project's schema.graphql,
//     served by the server gqlgen generates from it (package gqlserver), so
//     any valid query over the modelled types answers, not only the daemon's
//     own operations, and introspection answers when asked with the header
//     Prismatic-Docs-Introspection: true.
//   - POST /auth/refresh: the refresh-token exchange, giving short-lived JWT
//     access tokens.
//   - /admin/...: a JSON API that changes the model as Prismatic's UI would
//     (change a config value, deploy, enable, disable, delete, create an
//     instance, refresh or break a connection) and sends the matching signed
//     event webhook, plus fault injection, an event log and statistics.
//
// The same operations are methods on Sim, for tests that drive it directly.
// The model keeps what the real API does not show: each instance's deployed
// configuration (Sim.Deployed), the truth the daemon's cache must converge
// to. docs/simulator.md describes the routes, the demo data and what the
// simulator does not model.
package prismaticsim
