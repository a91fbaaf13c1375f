// Package ratelimit is the daemon's limit on Prismatic API requests, shared
// by every replica through Redis. Prismatic limits requests per
// organisation, so N replicas each pacing themselves at the rate would make
// N times the rate; here every request of every replica reserves its slot
// in one limit kept in Redis (a generic cell rate algorithm in one script,
// on Redis's clock), so all of them together stay under it.
//
// Each replica registers itself with a heartbeat that expires, so each
// knows how many replicas share the limit. A replica that cannot reach
// Redis falls back to its share of the rate (rate / replicas, as last
// counted), paced in the process, and goes back to the shared limit as
// soon as Redis answers.
package ratelimit
