package wire

import (
	"runtime"
	"testing"

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
	reused := false
	for range 10 {
		runtime.GC()
		if allocRaw(1<<20 - 100)[0] == 42 {
			reused = true
			break
		}
	}
	assert.True(t, reused, "the memory of a dropped payload comes back")
	assert.Len(t, allocRaw(recycleMin-1), recycleMin-1, "a small payload is a plain allocation")
	assert.Len(t, allocRaw(directAlloc+1), directAlloc+1)
}
