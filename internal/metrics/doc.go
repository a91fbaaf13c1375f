// Package metrics defines every Prometheus metric the daemon exports, on a
// registry it is given, all prefixed prismcache_ and with bounded labels.
// Components do not import it: they report through hooks (Intake.Observe,
// PoolOptions.OnResult, graphql.Options.Observe, LoopOptions.OnPass) that
// the app points at these methods.
package metrics
