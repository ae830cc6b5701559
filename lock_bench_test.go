//go:build unix

package mp_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpgo/mp"
)

type lockLoopArgs struct {
	L *mp.Lock
	N int
}

// lockLoop locks and unlocks L N times, uncontended, and returns how long
// that took in the child.
var lockLoop = mp.Register(func(ctx context.Context, a lockLoopArgs) (time.Duration, error) {
	start := time.Now()
	for range a.N {
		if err := a.L.Lock(ctx); err != nil {
			return 0, err
		}
		a.L.Unlock()
	}
	return time.Since(start), nil
})

// BenchmarkLock measures an uncontended Lock and Unlock: "mutex" is
// sync.Mutex, "lock" a Lock in its owner, and "child" a Lock in a child
// process (one round trip to the owner for Lock, a one-way wire.Message for
// Unlock), timed in the child.
func BenchmarkLock(b *testing.B) {
	b.Run("mutex", func(b *testing.B) {
		var mu sync.Mutex
		for b.Loop() {
			mu.Lock()
			mu.Unlock() //lint:ignore SA2001 an empty critical section is what is measured
		}
	})
	b.Run("lock", func(b *testing.B) {
		ctx := b.Context()
		l := mp.NewLock()
		for b.Loop() {
			if err := l.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			l.Unlock()
		}
	})
	b.Run("child", func(b *testing.B) {
		ctx := b.Context()
		pool := mp.NewProcessPool(1)
		defer func() {
			pool.Close()
			_ = pool.Join(ctx)
		}()
		l := mp.NewLock()
		if _, err := mp.Apply(ctx, pool, lockLoop, lockLoopArgs{L: l, N: 10}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		d, err := mp.Apply(ctx, pool, lockLoop, lockLoopArgs{L: l, N: b.N})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "ns/lock")
	})
}

// BenchmarkValueAdd measures Value.Add against the atomic add it is.
func BenchmarkValueAdd(b *testing.B) {
	b.Run("atomic", func(b *testing.B) {
		var n atomic.Int64
		for b.Loop() {
			n.Add(1)
		}
	})
	b.Run("value", func(b *testing.B) {
		v, err := mp.NewValue[int64](0)
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		for b.Loop() {
			v.Add(1)
		}
	})
	b.Run("value-float64", func(b *testing.B) {
		v, err := mp.NewValue[float64](0)
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		for b.Loop() {
			v.Add(1)
		}
	})
}
