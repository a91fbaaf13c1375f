// Package bench is the end-to-end performance harness behind `make bench`.
// It runs as its own process and drives a daemon started as
// `prismcache serve` in another, a redis-server of its own, and the Prismatic
// simulator with a fixed latency; each scenario prints one JSON line and the
// run ends with a table of every figure beside its ceiling or baseline and
// its target (docs/benchmarks.md explains them).
//
// The pure parts — percentiles, targets, the table, the parser of `go test
// -bench` output — are separate from the parts that start processes and send
// load, so they can be tested without either.
package bench
