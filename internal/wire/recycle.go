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
// reference to it, the finalizer puts the memory on a free list of its size
// class, from which a later frame's payload is read, warm and without being
// zeroed first, since it is overwritten in full before anyone sees it.
//
// Finalizers run only after a collection, and a stream whose payloads all
// come from the free lists allocates nothing that would start one: left to
// the pacer, the lists run dry and the payloads up to the next collection
// are plain allocations again, about half of them in a steady stream. So
// once half the budget has been handed out since the last such collection
// and the lists hold less than three quarters of it, a collection is
// started in the background (see collectSoon); the finalizers refill the
// lists with what the program dropped before they are empty. That is one
// collection per half budget received, fewer than plain allocations of the
// same payloads would cause in a small heap.
//
// Memory that no frame reuses is let go: after every collection in which a
// class's list was not drawn on, half of it is dropped, to be freed by the
// next one, as garbage would be.
//
// The memory in this cycle, handed out or on the lists, is bounded by
// recycleBudget; past it payloads are plain allocations. The bound matters:
// a collection counts every payload it finds dropped as live, since the
// finalizer keeps it, so unbounded recycling would let the heap goal, and
// with it the heap, double at every collection. Within it must fit, in a
// steady stream, the payloads a queue has prefetched (up to 8 MiB) and the
// program holds, those dropped since the last collection (half the
// budget), and those received while a collection runs, a few
// milliseconds' worth: with 32 MiB a tenth of BenchmarkXQueueLarge's
// items were plain allocations, with 64 MiB one or two in a hundred.
//
// The one visible effect is that the first byte of such a payload already
// has a finalizer: runtime.SetFinalizer on it would fail. Cleanups
// (runtime.AddCleanup) are unaffected.

const (
	// recycleMin is the payload size from which memory is recycled; below
	// it a finalizer costs more than it saves.
	recycleMin = separateRaw
	// recycleBudget is the most memory recycled at once in a process.
	recycleBudget = 64 << 20
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
	freeLists [recycleClass]freeList
	// recycleFuncs are the finalizers, one per class, made once so that
	// setting one allocates nothing.
	recycleFuncs [recycleClass]func(*byte)
	// recycling is the memory of the recycled payloads that exist, in
	// use or on the lists; a cleanup subtracts each one's size when it is
	// finally freed.
	recycling atomic.Int64
	// listed is the memory on the free lists.
	listed atomic.Int64
	// handedOut is the recycled memory handed out since a collection was
	// last started for the lists' sake.
	handedOut atomic.Int64
	// collecting is set while such a collection runs.
	collecting atomic.Bool
	// watching is set while a gcTick waits for the next collection.
	watching atomic.Bool
)

// A freeList holds the memory of dropped payloads of one size class.
type freeList struct {
	mu   sync.Mutex
	bufs []*byte
	// drawn records that a payload came off the list since the last
	// collection.
	drawn bool
}

func (l *freeList) take() *byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drawn = true
	n := len(l.bufs)
	if n == 0 {
		return nil
	}
	p := l.bufs[n-1]
	l.bufs[n-1] = nil
	l.bufs = l.bufs[:n-1]
	return p
}

func (l *freeList) put(p *byte) {
	l.mu.Lock()
	l.bufs = append(l.bufs, p)
	l.mu.Unlock()
}

// trim drops half of the list, rounded up, if it was not drawn on since
// the last collection, and returns how many payloads it dropped.
func (l *freeList) trim() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn {
		l.drawn = false
		return 0
	}
	n := len(l.bufs)
	keep := n / 2
	clear(l.bufs[keep:])
	l.bufs = l.bufs[:keep]
	return n - keep
}

func init() {
	for c := range recycleFuncs {
		size := int64(classSize(c))
		recycleFuncs[c] = func(p *byte) {
			freeLists[c].put(p)
			listed.Add(size)
		}
	}
}

func uncount(size int64) { recycling.Add(-size) }

// A gcTick is an object whose finalizer runs after the collection that
// finds it unreachable: a way to act once per collection.
type gcTick struct{ _ *byte }

// watch makes sure the free lists are trimmed after the next collection.
func watch() {
	if watching.CompareAndSwap(false, true) {
		runtime.SetFinalizer(&gcTick{}, afterCollection)
	}
}

// afterCollection trims the free lists and watches for the next
// collection for as long as any recycled memory exists.
func afterCollection(*gcTick) {
	for c := range freeLists {
		listed.Add(-int64(freeLists[c].trim() * classSize(c)))
	}
	watching.Store(false)
	if recycling.Load() > 0 {
		watch()
	}
}

// collectSoon starts a collection in the background, unless one it
// started still runs or less than half the budget was handed out since
// the last: a program that keeps its payloads would gain nothing from it,
// and one that drops them has not dropped enough to be worth one.
func collectSoon() {
	if handedOut.Load() < recycleBudget/2 || !collecting.CompareAndSwap(false, true) {
		return
	}
	handedOut.Store(0)
	go func() {
		defer collecting.Store(false)
		runtime.GC()
	}()
}

// class returns the size class of an n-byte payload, recycleMin <= n <=
// directAlloc, and the capacity of that class.
func class(n int) (c, size int) {
	exp := bits.Len(uint(n-1)) - 1 // 2^exp < n <= 2^(exp+1)
	step := 1 << (exp - 3)         // classSteps classes per doubling
	sub := (n - 1 - 1<<exp) / step // 0..classSteps-1
	c = (exp-minClassExp)*classSteps + sub
	return c, classSize(c)
}

// classSize returns the capacity of size class c.
func classSize(c int) int {
	exp := c/classSteps + minClassExp
	return 1<<exp + (c%classSteps+1)*(1<<(exp-3))
}

// allocRaw returns an n-byte slice whose contents are unspecified, for
// the caller to overwrite in full.
func allocRaw(n int) []byte {
	if n < recycleMin || n > directAlloc {
		return make([]byte, n)
	}
	c, size := class(n)
	var b []byte
	if p := freeLists[c].take(); p != nil {
		listed.Add(-int64(size))
		b = unsafe.Slice(p, size)
	} else if recycling.Add(int64(size)) > recycleBudget {
		recycling.Add(-int64(size))
		collectSoon()
		return make([]byte, n)
	} else {
		b = make([]byte, size)
		runtime.AddCleanup(&b[0], uncount, int64(size))
		watch()
	}
	if handedOut.Add(int64(size)) >= recycleBudget/2 && listed.Load() < recycleBudget*3/4 {
		collectSoon()
	}
	runtime.SetFinalizer(&b[0], recycleFuncs[c])
	return b[:n:n]
}
