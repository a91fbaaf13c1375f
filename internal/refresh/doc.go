// Package refresh keeps entries fresh: the durable work set in Redis that
// every refresh goes through (webhooks, operator requests, the reconciler),
// the workers that claim ids from it, fetch the instance and write the entry,
// and the pure rules that decide what a fetched instance does to an entry.
package refresh
