package wire

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassCoversSize(t *testing.T) {
	prev := -1
	for n := recycleMin; n <= directAlloc; n += 997 {
		c, size := class(n)
		require.GreaterOrEqual(t, c, 0, "n=%d", n)
		require.Less(t, c, recycleClass, "n=%d", n)
		require.GreaterOrEqual(t, size, n, "n=%d", n)
		require.LessOrEqual(t, size-n, n/classSteps, "n=%d wastes too much", n)
		require.GreaterOrEqual(t, c, prev, "classes grow with the size")
		require.Equal(t, size, classSize(c), "n=%d", n)
		prev = c
	}
	for _, n := range []int{recycleMin, 1 << 20, 1<<20 + 1, directAlloc} {
		_, size := class(n)
		if n&(n-1) == 0 {
			assert.Equal(t, n, size, "a power of two is a class of its own")
		}
		_, again := class(size)
		assert.Equal(t, size, again, "a class's size is in the class")
	}
}

func TestAllocRawRecycles(t *testing.T) {
	b := allocRaw(1 << 20)
	require.Len(t, b, 1<<20)
	require.Equal(t, 1<<20, cap(b), "the caller cannot see the class's spare capacity")
	// Payloads that were dropped: after a collection their finalizers put
	// the memory in the pool, and later payloads of their class reuse it.
	// Several, because sync.Pool drops some Puts under the race detector.
	for range 8 {
		allocRaw(1 << 20)[0] = 42
	}
	// Finalizers run on their own goroutine after the collection, hence
	// the polling.
	// Each try's payload is marked and dropped too, so that whichever
	// dropped payload the pool hands back, it is seen as recycled; only a
	// fresh allocation is zero.
	assert.Eventually(t, func() bool {
		runtime.GC()
		b := allocRaw(1<<20 - 100)
		recycled := b[0] == 42
		b[0] = 42
		return recycled
	}, 10*time.Second, time.Millisecond, "the memory of a dropped payload comes back")
	assert.Len(t, allocRaw(recycleMin-1), recycleMin-1, "a small payload is a plain allocation")
	assert.Len(t, allocRaw(directAlloc+1), directAlloc+1)
}

func TestAllocRawBudget(t *testing.T) {
	// Payloads that are all kept: past the budget they are plain
	// allocations, and the memory counted stays within it.
	var kept [][]byte
	for range 2 * recycleBudget / (1 << 20) {
		kept = append(kept, allocRaw(1<<20))
	}
	assert.LessOrEqual(t, recycling.Load(), int64(recycleBudget))
	assert.Positive(t, recycling.Load())
	assert.Len(t, kept, 2*recycleBudget/(1<<20))
	kept = nil
	// Once dropped and no longer reused, the memory is freed and no
	// longer counted: finalizers run, sync.Pool lets go of what it holds
	// after two collections, and cleanups subtract it.
	require.Eventually(t, func() bool {
		runtime.GC()
		return recycling.Load() == 0
	}, 10*time.Second, 10*time.Millisecond)
}

func TestAllocRawCollectsForAStream(t *testing.T) {
	// With the pacer off, only allocRaw starts collections: a stream of
	// payloads that are dropped as soon as they are read must get its
	// memory back without the program collecting.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	before := stats.NumGC
	for range recycleBudget / (1 << 20) {
		allocRaw(1 << 20)[0] = 0
	}
	assert.Eventually(t, func() bool {
		b := allocRaw(1 << 20)
		recycled := b[0] == 42
		b[0] = 42
		return recycled
	}, 10*time.Second, time.Millisecond, "the memory of a dropped payload comes back")
	runtime.ReadMemStats(&stats)
	assert.Greater(t, stats.NumGC, before, "allocRaw started a collection")
}
