//go:build mpready

package bench

import (
	"errors"
	"sync"
	"testing"

	"github.com/mpgo/mp"
)

// mp's JoinableQueue in BenchmarkQueue: Put, Get, TaskDone, Join, Close.
func init() {
	queueImpls = append([]queueImpl{{"mp", func(b *testing.B, prod, cons int) {
		ctx := b.Context()
		q := mp.NewJoinableQueue[int](queueCap)
		var consumers, producers sync.WaitGroup
		for range cons {
			consumers.Add(1)
			go func() {
				defer consumers.Done()
				for {
					if _, err := q.Get(ctx); err != nil {
						if !errors.Is(err, mp.ErrClosed) {
							b.Error(err)
						}
						return
					}
					q.TaskDone()
				}
			}()
		}
		for p := range prod {
			producers.Add(1)
			go func() {
				defer producers.Done()
				for i := p; i < queueItems; i += prod {
					if err := q.Put(ctx, i); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		producers.Wait()
		if err := q.Join(ctx); err != nil {
			b.Error(err)
		}
		q.Close()
		consumers.Wait()
	}}}, queueImpls...)
}
