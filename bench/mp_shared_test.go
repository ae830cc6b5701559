//go:build unix

package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mpgo/mp"
)

// Sizes of the shared-state workloads (Python's figures are per operation
// too).
const (
	lockOps      = 1_000_000
	lockChildOps = 10_000
	valueAdds    = 1_000_000
)

type lockLoopArg struct {
	L *mp.Lock
	N int
}

// lockLoop locks and unlocks L N times in a child, uncontended.
var lockLoop = mp.Register(func(ctx context.Context, a lockLoopArg) (int, error) {
	for range a.N {
		if err := a.L.Lock(ctx); err != nil {
			return 0, err
		}
		a.L.Unlock()
	}
	return a.N, nil
})

// BenchmarkLock measures an uncontended Lock and Unlock in the process that
// owns the lock, against sync.Mutex: Python's multiprocessing.Lock
// acquire and release.
func BenchmarkLock(b *testing.B) {
	b.Run("mp", func(b *testing.B) {
		ctx := b.Context()
		l := mp.NewLock()
		for b.Loop() {
			for range lockOps {
				if err := l.Lock(ctx); err != nil {
					b.Fatal(err)
				}
				l.Unlock()
			}
		}
		reportPer(b, lockOps, "lock")
	})
	b.Run("floor-mutex", func(b *testing.B) {
		var mu sync.Mutex
		n := 0
		for b.Loop() {
			for range lockOps {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}
		reportPer(b, lockOps, "lock")
		if n != b.N*lockOps {
			b.Fatalf("locked %d times, want %d", n, b.N*lockOps)
		}
	})
}

// BenchmarkLockChild measures an uncontended Lock and Unlock in a child
// process (a process-pool worker) of a lock its parent owns: one round trip
// per Lock. Python's multiprocessing.Lock, a POSIX semaphore in shared
// memory, costs the same in a child as in the parent.
func BenchmarkLockChild(b *testing.B) {
	b.Run("mp", func(b *testing.B) {
		ctx := b.Context()
		p := mp.NewProcessPool(1)
		defer closeAndJoin(b, p)
		l := mp.NewLock()
		if _, err := mp.Apply(ctx, p, lockLoop, lockLoopArg{L: l, N: 10}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if n, err := mp.Apply(ctx, p, lockLoop, lockLoopArg{L: l, N: lockChildOps}); err != nil || n != lockChildOps {
				b.Fatalf("child locked %d times, %v", n, err)
			}
		}
		reportPer(b, lockChildOps, "lock")
	})
}

// BenchmarkValueAdd measures Value.Add on an int64 in shared memory against
// an atomic add: Python's `with v.get_lock(): v.value += 1` on a
// multiprocessing.Value('q').
func BenchmarkValueAdd(b *testing.B) {
	b.Run("mp", func(b *testing.B) {
		v, err := mp.NewValue[int64](0)
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		for b.Loop() {
			for range valueAdds {
				v.Add(1)
			}
		}
		reportPer(b, valueAdds, "add")
		if got := v.Load(); got != int64(b.N*valueAdds) {
			b.Fatalf("value is %d, want %d", got, b.N*valueAdds)
		}
	})
	b.Run("floor-atomic", func(b *testing.B) {
		var n atomic.Int64
		for b.Loop() {
			for range valueAdds {
				n.Add(1)
			}
		}
		reportPer(b, valueAdds, "add")
		if got := n.Load(); got != int64(b.N*valueAdds) {
			b.Fatalf("value is %d, want %d", got, b.N*valueAdds)
		}
	})
}
