// Package chaos holds the chaos test (build tag chaos, run by make chaos):
// two daemon replicas as separate processes against one real Redis and the
// simulator with faults, while one replica is killed and restarted and
// Redis is flushed once.
package chaos
