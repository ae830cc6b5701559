package wire

import (
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A stream of large []byte items, the bulk of what a queue between
// processes may carry, costs the receiver one fresh allocation per item:
// the item is handed to the program, which owns it from then on. In a
// process whose live heap is small, that allocation rate makes the runtime
// collect every few items and give the freed pages back to the system, so
// that every new item is paid for again with page faults, zeroing and a
// share of a collection, which together cost more than the copy out of the
// socket (BenchmarkXQueueLargeItems in package mp measures it).
//
// The Reader therefore recycles the memory of the large payloads it
// allocates. Each gets a finalizer; when the program has dropped every
// reference to it, the finalizer puts the memory in a pool of its size
// class, from which a later frame's payload is read, warm and without
// being zeroed first, since it is overwritten in full before anyone sees
// it. The pools are sync.Pools, so memory that no frame reuses is released
// two collections later, as garbage would be.
//
// The memory in this cycle, handed out or pooled, is bounded by
// recycleBudget; past it payloads are plain allocations. The bound matters:
// a collection counts every payload it finds dropped as live, since the
// finalizer keeps it, so unbounded recycling would let the heap goal, and
// with it the heap, double at every collection.
//
// The one visible effect is that the first byte of such a payload already
// has a finalizer: runtime.SetFinalizer on it would fail. Cleanups
// (runtime.AddCleanup) are unaffected.

const (
	// recycleMin is the payload size from which memory is recycled; below
	// it a finalizer costs more than it saves.
	recycleMin = separateRaw
	// recycleBudget is the most memory recycled at once in a process.
	recycleBudget = 32 << 20
)

// Size classes: the sizes above 2^k up to 2^(k+1) fall into classSteps
// classes of equal width, so that a class wastes at most 1/classSteps of
// an allocation. The smallest range holds recycleMin = 2^15, the largest
// directAlloc = 2^22, the largest body read in one piece.
const (
	classSteps   = 8
	minClassExp  = 14
	maxClassExp  = 21
	recycleClass = (maxClassExp - minClassExp + 1) * classSteps
)

var (
	recyclePools [recycleClass]sync.Pool
	// recycleFuncs are the finalizers, one per class, made once so that
	// setting one allocates nothing.
	recycleFuncs [recycleClass]func(*byte)
	// recycling is the memory of the recycled payloads that exist, in
	// use or pooled; a cleanup subtracts each one's size when it is
	// finally freed.
	recycling atomic.Int64
)

func init() {
	for c := range recycleFuncs {
		recycleFuncs[c] = func(p *byte) { recyclePools[c].Put(p) }
	}
}

func uncount(size int64) { recycling.Add(-size) }

// class returns the size class of an n-byte payload, recycleMin <= n <=
// directAlloc, and the capacity of that class.
func class(n int) (c, size int) {
	exp := bits.Len(uint(n-1)) - 1 // 2^exp < n <= 2^(exp+1)
	step := 1 << (exp - 3)         // classSteps classes per doubling
	sub := (n - 1 - 1<<exp) / step // 0..classSteps-1
	return (exp-minClassExp)*classSteps + sub, 1<<exp + (sub+1)*step
}

// allocRaw returns an n-byte slice whose contents are unspecified, for
// the caller to overwrite in full.
func allocRaw(n int) []byte {
	if n < recycleMin || n > directAlloc {
		return make([]byte, n)
	}
	c, size := class(n)
	var b []byte
	if p, _ := recyclePools[c].Get().(*byte); p != nil {
		b = unsafe.Slice(p, size)
	} else if recycling.Add(int64(size)) > recycleBudget {
		recycling.Add(-int64(size))
		return make([]byte, n)
	} else {
		b = make([]byte, size)
		runtime.AddCleanup(&b[0], uncount, int64(size))
	}
	runtime.SetFinalizer(&b[0], recycleFuncs[c])
	return b[:n:n]
}
