// Package server is prismcache's HTTP edge: the webhook intake, the admin
// API, health and metrics. Handlers are given everything they use; this
// package maps errors to HTTP statuses and builds nothing it depends on.
package server
