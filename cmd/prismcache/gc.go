package main

import "runtime"

// heapFloor is memory the daemon's garbage collector may count as heap
// without it being used (see reserveHeap).
const heapFloor = 32 << 20

// heapReserve keeps the block reserveHeap allocates reachable.
var heapReserve []byte

// reserveHeap gives the garbage collector a floor. The daemon's live heap
// is small — about 5 MB serving webhooks, tens of MB with 100,000 cached
// instances — while every webhook allocates about 15 kB, so at Go's default
// (collect when the heap has doubled) it collects five times a second at
// 2,000 webhooks/s, and the requests that run during a collection wait for
// it. A 32 MiB block that holds no pointers and is never written raises the
// collector's target by that much without adding to resident memory (its
// pages are never touched) or to the marking work: collections become
// several times rarer while the heap is small, and make no difference once
// it is large. GOGC and GOMEMLIMIT still apply as usual.
func reserveHeap() {
	heapReserve = make([]byte, heapFloor)
	runtime.KeepAlive(heapReserve)
}
