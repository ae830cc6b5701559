package mp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	if err := checkInOrder(ctx, a.B, func(v []byte) []byte { return v }); err != nil {
		return 0, err
	}
	if err := checkInOrder(ctx, a.S, func(v string) []byte { return []byte(v) }); err != nil {
		return 0, err
	}
	return mp.PulledItems(), nil
}

// checkInOrder gets items of q until it is closed, checks the i-th
// against largeData and marks it done.
func checkInOrder[T any](ctx context.Context, q *mp.JoinableQueue[T], data func(T) []byte) error {
	for i := 0; ; i++ {
		v, err := q.Get(ctx)
		if errors.Is(err, mp.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if b := data(v); !bytes.Equal(b, largeData(i, len(b))) {
			return fmt.Errorf("%T item %d of %d bytes arrived garbled", v, i, len(b))
		}
		q.TaskDone()
	}
}

func init() {
	mp.Register(pullCheck)
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
