// Package app wires the daemon together: from a validated configuration it
// builds the Redis client, the store, the work set, the GraphQL client, the
// workers and the HTTP server, and starts and stops them in order. A test
// can start a whole daemon on 127.0.0.1:0 with it.
package app
