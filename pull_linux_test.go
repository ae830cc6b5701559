package mp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/internal/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pullCheck is the child of TestQueuePullsLargeItems: it checks every
// []byte and string item against largeData, in order, until each queue
// is closed, and returns how many items it pulled from the parent's
// memory.
func pullCheck(ctx context.Context, a struct {
	B *mp.JoinableQueue[[]byte]
	S *mp.JoinableQueue[string]
}) (int64, error) {
	for i := 0; ; i++ {
		v, err := a.B.Get(ctx)
		if errors.Is(err, mp.ErrClosed) {
			break
		}
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(v, largeData(i, len(v))) {
			return 0, fmt.Errorf("[]byte item %d of %d bytes arrived garbled", i, len(v))
		}
		a.B.TaskDone()
	}
	for i := 0; ; i++ {
		v, err := a.S.Get(ctx)
		if errors.Is(err, mp.ErrClosed) {
			break
		}
		if err != nil {
			return 0, err
		}
		if v != string(largeData(i, len(v))) {
			return 0, fmt.Errorf("string item %d of %d bytes arrived garbled", i, len(v))
		}
		a.S.TaskDone()
	}
	return mp.PulledItems(), nil
}

// dieAfterTwoBytes gets two []byte items, marks them done and ends its
// process with the rest of its prefetched items in flight.
func dieAfterTwoBytes(ctx context.Context, q *mp.JoinableQueue[[]byte]) (struct{}, error) {
	for range 2 {
		if _, err := q.Get(ctx); err != nil {
			return struct{}{}, err
		}
		q.TaskDone()
	}
	os.Exit(3)
	return struct{}{}, nil
}

func init() {
	mp.Register(pullCheck)
	mp.Register(dieAfterTwoBytes)
}

// TestQueuePullsLargeItems sends []byte and string items of every size
// around the thresholds to a child: on Linux the child pulls those of 64
// KiB and more from the parent's memory, and with MP_PULL=0 it pulls none;
// either way every item arrives intact and in order.
func TestQueuePullsLargeItems(t *testing.T) {
	large := 0
	for _, n := range largeSizes {
		if n >= 64<<10 {
			large++
		}
	}
	for _, tc := range []struct {
		name   string
		env    string
		pulled int64
	}{{"pull", "", int64(2 * large)}, {"MP_PULL=0", "0", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("MP_PULL", tc.env)
			}
			ctx := hangGuard(t)
			b, s := mp.NewJoinableQueue[[]byte](2), mp.NewJoinableQueue[string](2)
			p := startProc(t, pullCheck, struct {
				B *mp.JoinableQueue[[]byte]
				S *mp.JoinableQueue[string]
			}{b, s})
			for i, n := range largeSizes {
				require.NoError(t, b.Put(ctx, largeData(i, n)))
			}
			require.NoError(t, b.Join(ctx))
			b.Close()
			for i, n := range largeSizes {
				require.NoError(t, s.Put(ctx, string(largeData(i, n))))
			}
			require.NoError(t, s.Join(ctx))
			s.Close()
			require.NoError(t, p.Join(ctx))
			got, err := p.Result()
			require.NoError(t, err)
			assert.Equal(t, tc.pulled, got)
		})
	}
}

// TestQueuePulledConsumerDies has a consumer die with pulled items on
// their way to it: a second consumer gets every item the first did not
// finish, and Join returns with no loss to report.
func TestQueuePulledConsumerDies(t *testing.T) {
	ctx := hangGuard(t)
	q := mp.NewJoinableQueue[[]byte](0)
	const items = 20
	for i := range items {
		require.NoError(t, q.Put(ctx, largeData(i, 1<<20)))
	}
	a := startProc(t, dieAfterTwoBytes, q)
	err := a.Join(ctx)
	var ee *mp.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.ExitCode)
	b := startProc(t, drainBytes, q)
	require.NoError(t, q.Join(ctx))
	q.Close()
	require.NoError(t, b.Join(ctx))
	n, err := b.Result()
	require.NoError(t, err)
	// At least once: the first consumer's reports of its two TaskDones
	// may not have left its process before it exited.
	assert.GreaterOrEqual(t, n, (items-2)<<20)
	assert.LessOrEqual(t, n, items<<20)
	assert.Zero(t, n%(1<<20), "whole items only")
}

// TestQueueItemAtRefused hands a child's proxy the address of an item as
// a parent would: a proxy that never offered to pull refuses it, and one
// that did but cannot read the address fails with an error rather than a
// crash. Either error ends the child as a malformed message does.
func TestQueueItemAtRefused(t *testing.T) {
	err := mp.DeliverItemsAt(false, 1<<20, 1<<30)
	require.ErrorIs(t, err, wire.ErrMalformed)
	assert.Contains(t, err.Error(), "item address")
	err = mp.DeliverItemsAt(true, 1<<20, 4096)
	require.ErrorIs(t, err, wire.ErrMalformed)
	assert.Contains(t, err.Error(), "pulling a queue item")
	err = mp.DeliverItemsAt(true, wire.DefaultMaxFrame+1, 1<<30)
	require.ErrorIs(t, err, wire.ErrMalformed)
}
