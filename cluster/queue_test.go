package cluster_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type point struct {
	X, Y int
	Name string
}

func TestQueueRoundTrip(t *testing.T) {
	srv := server(t)
	ctx := t.Context()
	q, err := cluster.NewQueue[point](ctx, connect(t, srv), "q", 0)
	require.NoError(t, err)
	other, err := cluster.NewQueue[point](ctx, connect(t, srv), "q", 0)
	require.NoError(t, err)
	for i := range 5 {
		require.NoError(t, q.Put(ctx, point{i, -i, "p"}))
	}
	// The server counts an item put a moment after it acknowledged it.
	require.Eventually(t, func() bool { return other.Len() == 5 }, 10*time.Second, time.Millisecond)
	for i := range 5 {
		v, err := other.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, point{i, -i, "p"}, v)
	}
	_, err = q.TryGet()
	require.ErrorIs(t, err, mp.ErrEmpty)
	assert.Zero(t, q.Len())

	b, err := cluster.NewQueue[[]byte](ctx, connect(t, srv), "b", 0)
	require.NoError(t, err)
	require.NoError(t, b.Put(ctx, []byte("raw")))
	got, err := b.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, []byte("raw"), got)

	e, err := cluster.NewQueue[struct{}](ctx, connect(t, srv), "e", 0)
	require.NoError(t, err)
	require.NoError(t, e.Put(ctx, struct{}{}))
	_, err = e.Get(ctx)
	require.NoError(t, err)
}

func TestQueueBounded(t *testing.T) {
	srv := server(t)
	ctx := t.Context()
	q, err := cluster.NewQueue[int](ctx, connect(t, srv), "q", 2)
	require.NoError(t, err)
	require.NoError(t, q.TryPut(1))
	require.NoError(t, q.TryPut(2))
	require.ErrorIs(t, q.TryPut(3), mp.ErrFull)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, q.Put(short, 3), context.DeadlineExceeded)

	put := make(chan error, 1)
	go func() { put <- q.Put(ctx, 3) }()
	v, err := q.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	require.NoError(t, <-put)
	for _, want := range []int{2, 3} {
		v, err := q.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, v)
	}
}

func TestQueueClose(t *testing.T) {
	srv := server(t)
	ctx := t.Context()
	q, err := cluster.NewQueue[int](ctx, connect(t, srv), "q", 0)
	require.NoError(t, err)
	other, err := cluster.NewQueue[int](ctx, connect(t, srv), "q", 0)
	require.NoError(t, err)

	blocked := make(chan error, 1)
	go func() {
		_, err := other.Get(ctx)
		blocked <- err
	}()
	require.NoError(t, q.Put(ctx, 1)) // taken by the blocked Get
	require.NoError(t, <-blocked)
	go func() {
		_, err := other.Get(ctx)
		blocked <- err
	}()
	require.NoError(t, q.Close())
	require.ErrorIs(t, <-blocked, mp.ErrClosed, "a blocked Get sees Close")

	q2, err := cluster.NewQueue[int](ctx, connect(t, srv), "q2", 0)
	require.NoError(t, err)
	require.NoError(t, q2.Put(ctx, 7))
	require.NoError(t, q2.Close())
	require.NoError(t, q2.Close(), "closing twice does nothing")
	require.ErrorIs(t, q2.Put(ctx, 8), mp.ErrClosed)
	// Another process learns of the close from the server.
	q3, err := cluster.NewQueue[int](ctx, connect(t, srv), "q2", 0)
	require.NoError(t, err)
	require.ErrorIs(t, q3.TryPut(8), mp.ErrClosed)
	var got []int
	for v, err := range q3.All(ctx) {
		require.NoError(t, err)
		got = append(got, v)
	}
	assert.Equal(t, []int{7}, got)
	_, err = q3.TryGet()
	require.ErrorIs(t, err, mp.ErrClosed)
}

func TestJoinableQueueAcrossConsumers(t *testing.T) {
	srv := server(t)
	ctx := t.Context()
	producer, err := cluster.NewJoinableQueue[int](ctx, connect(t, srv), "jq", 0)
	require.NoError(t, err)
	const n = 40
	for i := range n {
		require.NoError(t, producer.Put(ctx, i))
	}
	require.NoError(t, producer.Close())
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for range 2 {
		c, err := cluster.NewJoinableQueue[int](ctx, connect(t, srv), "jq", 0)
		require.NoError(t, err)
		wg.Go(func() {
			for v, err := range c.All(ctx) {
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				seen[v]++
				mu.Unlock()
				c.TaskDone()
			}
		})
	}
	require.NoError(t, producer.Join(ctx))
	wg.Wait()
	assert.Len(t, seen, n)
	assert.Panics(t, producer.TaskDone)
}

func TestJoinableQueueJoinWaitsForHeldItems(t *testing.T) {
	srv := server(t)
	ctx := t.Context()
	q, err := cluster.NewJoinableQueue[int](ctx, connect(t, srv), "jq", 0)
	require.NoError(t, err)
	require.NoError(t, q.Put(ctx, 1))
	_, err = q.Get(ctx)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, q.Join(short), context.DeadlineExceeded)
	q.TaskDone()
	require.NoError(t, q.Join(ctx))
}

func TestJoinableQueueRedeliversDeadConsumersItem(t *testing.T) {
	srv := server(t)
	ctx := t.Context()
	opts := []cluster.Option{cluster.AckWait(300 * time.Millisecond)}
	producer, err := cluster.NewJoinableQueue[int](ctx, connect(t, srv), "jq", 0, opts...)
	require.NoError(t, err)
	require.NoError(t, producer.Put(ctx, 42))

	// A consumer gets the item and dies: its connection is gone.
	deadJS := connect(t, srv)
	deadCtx, kill := context.WithCancel(ctx)
	defer kill()
	dead, err := cluster.NewJoinableQueue[int](deadCtx, deadJS, "jq", 0, opts...)
	require.NoError(t, err)
	v, err := dead.Get(ctx)
	require.NoError(t, err)
	require.Equal(t, 42, v)
	deadJS.Conn().Close()

	live, err := cluster.NewJoinableQueue[int](ctx, connect(t, srv), "jq", 0, opts...)
	require.NoError(t, err)
	v, err = live.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, 42, v)
	live.TaskDone()
	require.NoError(t, producer.Join(ctx))
}

func TestJoinableQueueReportsLostItems(t *testing.T) {
	srv := server(t)
	ctx := t.Context()
	opts := []cluster.Option{cluster.AckWait(200 * time.Millisecond), cluster.MaxDeliver(2)}
	producer, err := cluster.NewJoinableQueue[int](ctx, connect(t, srv), "jq", 0, opts...)
	require.NoError(t, err)
	require.NoError(t, producer.Put(ctx, 1))
	for range 2 {
		js := connect(t, srv)
		hctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c, err := cluster.NewJoinableQueue[int](hctx, js, "jq", 0, opts...)
		require.NoError(t, err)
		_, err = c.Get(ctx)
		require.NoError(t, err)
		js.Conn().Close()
	}
	// A consumer asking for items lets the server count the item lost.
	asker, err := cluster.NewJoinableQueue[int](ctx, connect(t, srv), "jq", 0, opts...)
	require.NoError(t, err)
	askCtx, stop := context.WithCancel(ctx)
	asked := make(chan error, 1)
	go func() {
		_, err := asker.Get(askCtx)
		asked <- err
	}()
	err = producer.Join(ctx)
	require.ErrorIs(t, err, mp.ErrLost)
	assert.Contains(t, err.Error(), "1 items")
	require.NoError(t, producer.Join(ctx), "lost items are reported once")
	stop()
	require.ErrorIs(t, <-asked, context.Canceled)
}

func TestQueueBadItems(t *testing.T) {
	srv := server(t)
	ctx := t.Context()
	raw, err := cluster.NewQueue[[]byte](ctx, connect(t, srv), "q", 0)
	require.NoError(t, err)
	require.NoError(t, raw.Put(ctx, []byte("not gob")))
	ints, err := cluster.NewQueue[int](ctx, connect(t, srv), "q", 0)
	require.NoError(t, err)
	_, err = ints.Get(ctx)
	require.ErrorContains(t, err, "does not decode as int")
	_, err = ints.TryGet()
	require.ErrorIs(t, err, mp.ErrEmpty, "the bad item is not delivered again")

	err = raw.Put(ctx, make([]byte, 9<<20))
	require.ErrorContains(t, err, "max_payload")
}
