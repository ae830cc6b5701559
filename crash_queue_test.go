//go:build unix

package mp_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpgo/mp"
)

// The crash matrix of a queue consumer: the faults of crash_test.go at
// every step where user code runs on an item's way through a queue shared
// with a child. A consumer child gets the item (its decoding runs in the
// child), processes it (run), and puts a reply into a second queue (its
// encoding runs in the child, its decoding in the parent).

// crashConsumer gets one item, faults at its run step, and puts the item
// into out, then marks it done.
func crashConsumer(ctx context.Context, qs crashQueues) (int, error) {
	item, err := qs.In.Get(ctx)
	if err != nil {
		return 0, err
	}
	if err := item.faultAt(stepRun); err != nil {
		return 0, err
	}
	if err := qs.Out.Put(ctx, item); err != nil {
		return 0, err
	}
	qs.In.TaskDone()
	return item.N, nil
}

type crashQueues struct {
	In  *mp.JoinableQueue[crashArg]
	Out *mp.Queue[crashArg]
}

func init() { mp.Register(crashConsumer) }

// runConsumer runs one consumer child to its end.
func runConsumer(ctx context.Context, qs crashQueues) error {
	p := mp.NewProcess(crashConsumer, qs)
	p.Stderr = &strings.Builder{} // a segmentation fault's report
	if err := p.Start(); err != nil {
		return err
	}
	if err := p.Join(ctx); err != nil {
		return err
	}
	_, err := p.Result()
	return err
}

func TestCrashMatrixQueueConsumer(t *testing.T) {
	for _, c := range crashCells() {
		t.Run(c.step+"/"+c.fault, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			qs := crashQueues{In: mp.NewJoinableQueue[crashArg](0), Out: mp.NewQueue[crashArg](0)}
			// A first consumer takes the queues to a child, so that every
			// later Put encodes its item at once, in the caller.
			require.NoError(t, qs.In.Put(ctx, crashArg{N: 1}))
			require.NoError(t, runConsumer(ctx, qs))
			got, err := qs.Out.Get(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, got.N)

			err = qs.In.Put(ctx, crashArg{N: 2, Fault: c.fault, Step: c.step})
			if c.step == stepArgEncode {
				// The parent's own encoding fails the Put that tried it.
				requireCrash(t, c, err)
				assert.Equal(t, 0, qs.In.Len(), "nothing was queued")
				return
			}
			require.NoError(t, err)
			qs.In.Close()

			if c.step == stepResEncode || c.step == stepResDecode {
				// The item was got and processed; the consumer's Put of
				// its reply fails, or the consumer dies in it.
				requireCrash(t, c, runConsumer(ctx, qs))
			} else {
				// Every delivery of the item faults; a consumer that finds
				// the queue closed and drained ends with ErrClosed.
				deliveries := 0
				for {
					err := runConsumer(ctx, qs)
					if errors.Is(err, mp.ErrClosed) {
						break
					}
					requireCrash(t, c, err)
					deliveries++
					require.LessOrEqual(t, deliveries, 3, "the delivery limit holds")
				}
				assert.Equal(t, 3, deliveries, "the item was delivered up to the limit")
				err := qs.In.Join(ctx)
				require.ErrorIs(t, err, mp.ErrLost)
				assert.ErrorContains(t, err, "1 item")
			}
			// The owner's queues go on working.
			q := mp.NewJoinableQueue[crashArg](0)
			require.NoError(t, q.Put(ctx, crashArg{N: 3}))
			require.NoError(t, runConsumer(ctx, crashQueues{In: q, Out: qs.Out}))
			got, err = qs.Out.Get(ctx)
			require.NoError(t, err)
			assert.Equal(t, 3, got.N)
			require.NoError(t, q.Join(ctx))
		})
	}
}
