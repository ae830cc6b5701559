//go:build unix

package mp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sizes of the large-item tests: each side of the thresholds at which
// a struct's byte fields travel beside its gob (32 KiB), a string is
// received in place and an item travels alone (64 KiB).
var largeSizes = []int{0, 1, 32<<10 - 1, 32 << 10, 64<<10 - 1, 64 << 10, 1 << 20, 3<<20 + 7}

func largeData(seq, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seq*7 + i/1000)
	}
	return b
}

// echoLarge is the child of TestQueueLargeItemsBothWays: it checks every
// item it gets against largeData and puts it back on Out, until In is
// closed.
func echoLarge(ctx context.Context, a struct {
	In  *mp.JoinableQueue[largeItem]
	Out *mp.Queue[largeItem]
	S   *mp.JoinableQueue[string]
	SO  *mp.Queue[string]
}) (int, error) {
	n := 0
	for {
		v, err := a.In.Get(ctx)
		if errors.Is(err, mp.ErrClosed) {
			break
		}
		if err != nil {
			return n, err
		}
		if !bytes.Equal(v.Data, largeData(v.Seq, len(v.Data))) {
			return n, fmt.Errorf("item %d of %d bytes arrived garbled", v.Seq, len(v.Data))
		}
		if err := a.Out.Put(ctx, v); err != nil {
			return n, err
		}
		a.In.TaskDone()
		n++
	}
	for {
		s, err := a.S.Get(ctx)
		if errors.Is(err, mp.ErrClosed) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if err := a.SO.Put(ctx, s); err != nil {
			return n, err
		}
		a.S.TaskDone()
		n++
	}
}

// dieAfterTwo gets two items, marks them done and ends its process with
// the rest of its prefetched items in flight; dieAfterTwoBytes does the
// same with []byte items, which a child on Linux pulls from the parent's
// memory.
func dieAfterTwo(ctx context.Context, q *mp.JoinableQueue[largeItem]) (struct{}, error) {
	return dieAfterTwoOf(ctx, q)
}

func dieAfterTwoBytes(ctx context.Context, q *mp.JoinableQueue[[]byte]) (struct{}, error) {
	return dieAfterTwoOf(ctx, q)
}

func dieAfterTwoOf[T any](ctx context.Context, q *mp.JoinableQueue[T]) (struct{}, error) {
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
	mp.Register(echoLarge)
	mp.Register(dieAfterTwo)
	mp.Register(dieAfterTwoBytes)
}

// TestQueueLargeItemsBothWays sends struct and string items of every size
// around the thresholds to a child, which checks them and puts them back:
// both directions, each side of every threshold, arrive intact.
func TestQueueLargeItemsBothWays(t *testing.T) {
	ctx := hangGuard(t)
	in, out := mp.NewJoinableQueue[largeItem](4), mp.NewQueue[largeItem](0)
	s, so := mp.NewJoinableQueue[string](4), mp.NewQueue[string](0)
	p := startProc(t, echoLarge, struct {
		In  *mp.JoinableQueue[largeItem]
		Out *mp.Queue[largeItem]
		S   *mp.JoinableQueue[string]
		SO  *mp.Queue[string]
	}{in, out, s, so})
	for i, n := range largeSizes {
		require.NoError(t, in.Put(ctx, largeItem{Seq: i, Data: largeData(i, n)}))
	}
	require.NoError(t, in.Join(ctx))
	in.Close()
	for i, n := range largeSizes {
		v, err := out.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, i, v.Seq)
		assert.True(t, bytes.Equal(largeData(i, n), v.Data), "item %d of %d bytes", i, n)
	}
	for i, n := range largeSizes {
		require.NoError(t, s.Put(ctx, string(largeData(i, n))))
	}
	require.NoError(t, s.Join(ctx))
	s.Close()
	for i, n := range largeSizes {
		v, err := so.Get(ctx)
		require.NoError(t, err)
		assert.True(t, v == string(largeData(i, n)), "string %d of %d bytes", i, n)
	}
	require.NoError(t, p.Join(ctx))
	n, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, 2*len(largeSizes), n)
}

// TestQueueItemOverFrameLimit puts items too large for a frame into a
// shared queue: each Put fails at once, saying why, and the queue goes on.
func TestQueueItemOverFrameLimit(t *testing.T) {
	ctx := hangGuard(t)
	huge := make([]byte, 64<<20)
	q := mp.NewJoinableQueue[largeItem](0)
	p := startProc(t, drainLargeStruct, q)
	err := q.Put(ctx, largeItem{Data: huge})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exceeds the")
	s := mp.NewJoinableQueue[string](0)
	ps := startProc(t, drainLargeString, s)
	err = s.Put(ctx, string(huge))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exceeds the")
	require.NoError(t, q.Put(ctx, largeItem{Data: huge[:1<<20]}))
	require.NoError(t, q.Join(ctx))
	q.Close()
	s.Close()
	require.NoError(t, p.Join(ctx))
	n, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, 1<<20, n)
	require.NoError(t, ps.Join(ctx))
}

// TestQueueLargeConsumerDies has a consumer die with large items on their
// way to it, some perhaps half sent, or (bytes, on Linux) pulled: a second
// consumer gets every item the first did not finish, and Join returns,
// with no loss to report.
func TestQueueLargeConsumerDies(t *testing.T) {
	t.Run("struct", func(t *testing.T) {
		consumerDies(t, func(i int) largeItem { return largeItem{Seq: i, Data: largeData(i, 1<<20)} },
			dieAfterTwo, drainLargeStruct)
	})
	t.Run("bytes", func(t *testing.T) {
		consumerDies(t, func(i int) []byte { return largeData(i, 1<<20) }, dieAfterTwoBytes, drainBytes)
	})
}

// consumerDies is TestQueueLargeConsumerDies for items of 1 MiB made by
// item, a consumer die that dies after two and a consumer drain that
// counts the bytes it got.
func consumerDies[T any](t *testing.T, item func(i int) T,
	die mp.Func[*mp.JoinableQueue[T], struct{}], drain mp.Func[*mp.JoinableQueue[T], int]) {
	ctx := hangGuard(t)
	q := mp.NewJoinableQueue[T](0)
	const items = 20
	for i := range items {
		require.NoError(t, q.Put(ctx, item(i)))
	}
	a := startProc(t, die, q)
	err := a.Join(ctx)
	var ee *mp.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.ExitCode)
	b := startProc(t, drain, q)
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
