package main

import (
	"math"
	"runtime"
	"runtime/debug"
)

// heapFloor is memory the daemon's garbage collector counts as live heap
// without it being used (see reserveHeap).
const heapFloor = 32 << 20

// heapReserve keeps the block reserveHeap allocates reachable.
var heapReserve []byte

// reserveHeap gives the garbage collector a floor. The daemon's live heap
// is small — about 5 MB serving webhooks, tens of MB with 100,000 cached
// instances — while every webhook allocates about 15 kB, so at Go's default
// (collect when the heap has doubled) it collects five times a second at
// 2,000 webhooks/s, and the requests that run during a collection wait for
// it. A 32 MiB block that holds no pointers counts as live heap, so with
// GOGC=100 the collector lets about 64 MiB more garbage build up before it
// runs: collections become several times rarer while the heap is small and
// make little difference once it is large. The block itself is never
// written, so it is not resident and not scanned; the extra garbage is
// resident (docs/operations.md: 70–85 MB with 100,000 cached instances
// instead of 30–50 MB).
//
// Under a memory limit (GOMEMLIMIT) the block would count against the limit
// and make collections more frequent, not less: then it is not allocated.
func reserveHeap() {
	if debug.SetMemoryLimit(-1) != math.MaxInt64 {
		return
	}
	heapReserve = make([]byte, heapFloor)
	runtime.KeepAlive(heapReserve)
}
