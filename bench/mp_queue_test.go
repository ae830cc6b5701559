package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mpgo/mp"
)

// mp's JoinableQueue in BenchmarkQueue: Put, Get, TaskDone, Join, Close.
// Like the channel floor, it runs without a context that can be cancelled:
// with one, each blocking Put or Get also watches ctx.Done(), which the
// root package's BenchmarkQueue/*/Queue/timeout compares with a channel
// select on ctx.Done().
func init() {
	queueImpls = append([]queueImpl{{"mp", func(tb testing.TB, prod, cons, n int) int64 {
		ctx := context.Background()
		q := mp.NewJoinableQueue[int](queueCap)
		var consumers, producers sync.WaitGroup
		var sum atomic.Int64
		for range cons {
			consumers.Add(1)
			go func() {
				defer consumers.Done()
				local := 0
				defer func() { sum.Add(int64(local)) }()
				for {
					v, err := q.Get(ctx)
					if err != nil {
						if !errors.Is(err, mp.ErrClosed) {
							tb.Error(err)
						}
						return
					}
					local += v
					q.TaskDone()
				}
			}()
		}
		for p := range prod {
			producers.Add(1)
			go func() {
				defer producers.Done()
				for i := p; i < n; i += prod {
					if err := q.Put(ctx, i); err != nil {
						tb.Error(err)
						return
					}
				}
			}()
		}
		producers.Wait()
		if err := q.Join(ctx); err != nil {
			tb.Error(err)
		}
		q.Close()
		consumers.Wait()
		return sum.Load()
	}}}, queueImpls...)
}
