//go:build unix

package mp_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tasks the cross-process queue tests run in children.

// jobs is the argument of the consumers: a queue inside a struct.
type jobs struct {
	Q    *mp.JoinableQueue[int]
	Out  *mp.Queue[string]
	Stop int // items to take before returning; 0: until closed
}

// consume takes items until the queue is closed (or Stop items), marks
// each done and reports "pid:item" on Out.
func consume(ctx context.Context, j jobs) (int, error) {
	n := 0
	for {
		v, err := j.Q.Get(ctx)
		if errors.Is(err, mp.ErrClosed) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if j.Out != nil {
			if err := j.Out.Put(ctx, fmt.Sprintf("%d:%d", os.Getpid(), v)); err != nil {
				return n, err
			}
		}
		j.Q.TaskDone()
		n++
		if j.Stop > 0 && n == j.Stop {
			return n, nil
		}
	}
}

// produce puts from..to-1 on q.
func produce(ctx context.Context, a struct {
	Q        *mp.Queue[int]
	From, To int
}) (struct{}, error) {
	for i := a.From; i < a.To; i++ {
		if err := a.Q.Put(ctx, i); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
}

// hang takes one item, reports it on Out and then waits to be killed.
func hang(ctx context.Context, j jobs) (struct{}, error) {
	v, err := j.Q.Get(ctx)
	if err != nil {
		return struct{}{}, err
	}
	if err := j.Out.Put(ctx, strconv.Itoa(v)); err != nil {
		return struct{}{}, err
	}
	<-ctx.Done()
	return struct{}{}, nil
}

// getWithin does one Get bounded by a timeout and returns the outcome as
// text.
func getWithin(ctx context.Context, a struct {
	Q *mp.Queue[int]
	D time.Duration
}) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.D)
	defer cancel()
	v, err := a.Q.Get(ctx)
	if err != nil {
		return err.Error(), nil
	}
	return strconv.Itoa(v), nil
}

// putMany puts items and reports how many it put before each checkpoint
// on Out: the bounded-queue test watches it block.
func putMany(ctx context.Context, a struct {
	Q   *mp.Queue[int]
	Out *mp.Queue[string]
	N   int
}) (struct{}, error) {
	for i := range a.N {
		if err := a.Q.Put(ctx, i); err != nil {
			return struct{}{}, err
		}
		if err := a.Out.Put(ctx, strconv.Itoa(i)); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
}

// putBig puts one item of n bytes that nobody reads, and returns.
func putBig(ctx context.Context, a struct {
	Q *mp.Queue[[]byte]
	N int
}) (struct{}, error) {
	return struct{}{}, a.Q.Put(ctx, make([]byte, a.N))
}

// checkBig gets []byte items until the queue is closed and checks that
// item i has the length and fill bigItem(i) gives, collecting garbage as it
// goes so that the memory of the items it dropped is reused for later
// ones. It returns how many items it got, or the first mismatch.
func checkBig(ctx context.Context, q *mp.Queue[[]byte]) (int, error) {
	for i := 0; ; i++ {
		b, err := q.Get(ctx)
		if errors.Is(err, mp.ErrClosed) {
			return i, nil
		}
		if err != nil {
			return i, err
		}
		want := bigItem(i)
		if len(b) != len(want) || cap(b) != len(b) {
			return i, fmt.Errorf("item %d: len %d cap %d, want %d", i, len(b), cap(b), len(want))
		}
		for j := range b {
			if b[j] != want[j] {
				return i, fmt.Errorf("item %d: byte %d is %d, want %d", i, j, b[j], want[j])
			}
		}
		if i%4 == 3 {
			runtime.GC()
		}
	}
}

// bigItem is the i-th item checkBig expects: sizes around the recycling
// threshold and up to a few MiB, each filled with its own pattern.
func bigItem(i int) []byte {
	sizes := []int{32 << 10, 32<<10 + 1, 100 << 10, 1 << 20, 1<<20 - 3, 3<<20 + 7, 64 << 10}
	b := make([]byte, sizes[i%len(sizes)])
	for j := range b {
		b[j] = byte(i + j/4096)
	}
	return b
}

// badItem can be encoded only when V holds nil or a gob-registered type.
type badItem struct {
	V any
	N int
}

// unregistered is a type that gob does not know, so a badItem holding it
// cannot be encoded.
type unregistered struct{ X int }

// putBad tries an item that cannot be encoded, then a good one, and
// reports the first error.
func putBad(ctx context.Context, q *mp.Queue[badItem]) (string, error) {
	err := q.Put(ctx, badItem{V: unregistered{1}})
	if err == nil {
		return "", errors.New("no error")
	}
	return err.Error(), q.Put(ctx, badItem{N: 7})
}

// forward tries to pass the queue it received on to a grandchild.
func forward(_ context.Context, q *mp.Queue[int]) (string, error) {
	p := mp.NewProcess(getWithin, struct {
		Q *mp.Queue[int]
		D time.Duration
	}{q, time.Second})
	err := p.Start()
	if err == nil {
		return "", errors.New("the grandchild started")
	}
	return err.Error(), nil
}

// produceAndJoin puts N items on a JoinableQueue and waits, in the child,
// until the parent has marked them all done.
func produceAndJoin(ctx context.Context, a struct {
	Q *mp.JoinableQueue[int]
	N int
}) (struct{}, error) {
	for i := range a.N {
		if err := a.Q.Put(ctx, i); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, a.Q.Join(ctx)
}

// doneTwice gets one item and calls TaskDone twice.
func doneTwice(ctx context.Context, q *mp.JoinableQueue[int]) (struct{}, error) {
	if _, err := q.Get(ctx); err != nil {
		return struct{}{}, err
	}
	q.TaskDone()
	q.TaskDone()
	return struct{}{}, nil
}

func init() {
	mp.Register(forward)
	mp.Register(produceAndJoin)
	mp.Register(doneTwice)
	mp.Register(consume)
	mp.Register(produce)
	mp.Register(hang)
	mp.Register(getWithin)
	mp.Register(putMany)
	mp.Register(putBig)
	mp.Register(putBad)
	mp.Register(checkBig)
}

func startProc[A, R any](t *testing.T, f mp.Func[A, R], arg A) *mp.Process[R] {
	t.Helper()
	p := mp.NewProcess(f, arg)
	require.NoError(t, p.Start())
	t.Cleanup(func() {
		_ = p.Kill()
		<-p.Done()
	})
	return p
}

func TestJoinableQueueChildConsumers(t *testing.T) {
	ctx := t.Context()
	q := mp.NewJoinableQueue[int](0)
	procs := make([]*mp.Process[int], 4)
	for i := range procs {
		procs[i] = startProc(t, consume, jobs{Q: q})
	}
	for i := range 40 {
		require.NoError(t, q.Put(ctx, i))
	}
	require.NoError(t, q.Join(ctx))
	q.Close()
	total := 0
	for _, p := range procs {
		require.NoError(t, p.Join(ctx))
		n, err := p.Result()
		require.NoError(t, err)
		total += n
		code, ok := p.ExitCode()
		assert.True(t, ok)
		assert.Equal(t, 0, code)
	}
	assert.Equal(t, 40, total)
}

// TestQueueLargeItemsIntact sends large items of many sizes to a child
// that checks every byte while collecting garbage, so that the memory the
// receiving side recycles is reused under it.
func TestQueueLargeItemsIntact(t *testing.T) {
	ctx := t.Context()
	q := mp.NewQueue[[]byte](0)
	p := startProc(t, checkBig, q)
	const items = 70
	for i := range items {
		require.NoError(t, q.Put(ctx, bigItem(i)))
	}
	q.Close()
	require.NoError(t, p.Join(ctx))
	n, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, items, n)
}

func TestQueueParentThenChildOrder(t *testing.T) {
	ctx := t.Context()
	q := mp.NewQueue[int](0)
	for i := range 10 {
		require.NoError(t, q.Put(ctx, i))
	}
	p := startProc(t, produce, struct {
		Q        *mp.Queue[int]
		From, To int
	}{q, 10, 20})
	require.NoError(t, p.Join(ctx))
	var got []int
	for range 20 {
		v, err := q.Get(ctx)
		require.NoError(t, err)
		got = append(got, v)
	}
	want := make([]int, 20)
	for i := range want {
		want[i] = i
	}
	assert.Equal(t, want, got)
}

func TestQueueKilledConsumerRedelivers(t *testing.T) {
	ctx := t.Context()
	q := mp.NewJoinableQueue[int](0)
	out := mp.NewQueue[string](0)
	for i := range 10 {
		require.NoError(t, q.Put(ctx, i))
	}
	a := startProc(t, hang, jobs{Q: q, Out: out})
	held, err := out.Get(ctx)
	require.NoError(t, err)
	require.NoError(t, a.Kill())
	<-a.Done()
	b := startProc(t, consume, jobs{Q: q, Out: out, Stop: 10})
	require.NoError(t, q.Join(ctx))
	require.NoError(t, b.Join(ctx))
	var seen []int
	for out.Len() > 0 {
		s, err := out.Get(ctx)
		require.NoError(t, err)
		var pid, v int
		_, err = fmt.Sscanf(s, "%d:%d", &pid, &v)
		require.NoError(t, err)
		seen = append(seen, v)
	}
	slices.Sort(seen)
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, seen, "the item %s held by the killed consumer is processed once more", held)
}

func TestQueueLostAfterDeliveryLimit(t *testing.T) {
	ctx := t.Context()
	q := mp.NewJoinableQueue[int](0)
	out := mp.NewQueue[string](0)
	require.NoError(t, q.Put(ctx, 42))
	var pid int
	for range 3 {
		p := startProc(t, hang, jobs{Q: q, Out: out})
		v, err := out.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, "42", v)
		pid = p.Pid()
		require.NoError(t, p.Kill())
		<-p.Done()
	}
	err := q.Join(ctx)
	require.ErrorIs(t, err, mp.ErrLost)
	assert.Contains(t, err.Error(), "1 items")
	assert.Contains(t, err.Error(), strconv.Itoa(pid))
	assert.NoError(t, q.Join(ctx), "the loss is reported once")
}

func TestQueueChildGetCancelled(t *testing.T) {
	ctx := t.Context()
	q := mp.NewQueue[int](0)
	p := startProc(t, getWithin, struct {
		Q *mp.Queue[int]
		D time.Duration
	}{q, 20 * time.Millisecond})
	require.NoError(t, p.Join(ctx))
	r, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, context.DeadlineExceeded.Error(), r)
	require.NoError(t, q.Put(ctx, 5))
	v, err := q.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, v, "the cancelled Get left nothing behind")
}

func TestQueueChildSeesClose(t *testing.T) {
	ctx := t.Context()
	q := mp.NewJoinableQueue[int](0)
	p := startProc(t, consume, jobs{Q: q})
	require.NoError(t, q.Put(ctx, 1))
	require.NoError(t, q.Join(ctx))
	q.Close()
	require.NoError(t, p.Join(ctx))
	n, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestQueueBoundedChildBlocks(t *testing.T) {
	ctx := t.Context()
	q := mp.NewQueue[int](2)
	out := mp.NewQueue[string](0)
	p := startProc(t, putMany, struct {
		Q   *mp.Queue[int]
		Out *mp.Queue[string]
		N   int
	}{q, out, 5})
	for i := range 2 {
		s, err := out.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(i), s)
	}
	// The third Put waits for room: nothing more is reported while the
	// queue stays full.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := out.Get(short)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 2, q.Len())
	for i := range 5 {
		v, err := q.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, i, v)
	}
	require.NoError(t, p.Join(ctx))
}

func TestQueueChildExitsWithUnreadItems(t *testing.T) {
	ctx := t.Context()
	q := mp.NewQueue[[]byte](0)
	p := startProc(t, putBig, struct {
		Q *mp.Queue[[]byte]
		N int
	}{q, 1 << 20})
	require.NoError(t, p.Join(ctx))
	assert.Equal(t, 1, q.Len())
	b, err := q.Get(ctx)
	require.NoError(t, err)
	assert.Len(t, b, 1<<20)
}

func TestQueueUnencodableItem(t *testing.T) {
	ctx := t.Context()
	q := mp.NewQueue[badItem](0)
	p := startProc(t, putBad, q)
	require.NoError(t, p.Join(ctx))
	msg, err := p.Result()
	require.NoError(t, err)
	assert.Contains(t, msg, "cannot encode")
	v, err := q.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, 7, v.N)
	// In the parent, once the queue has been shared.
	err = q.Put(ctx, badItem{V: unregistered{1}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot encode")
	require.NoError(t, q.Put(ctx, badItem{N: 8}))
	v, err = q.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, 8, v.N)
}

func TestQueueBadConsumerDropped(t *testing.T) {
	ctx := t.Context()
	q := mp.NewJoinableQueue[int](0)
	require.NoError(t, q.Put(ctx, 1))
	bad := startProc(t, mp.BadConsumer, q)
	err := bad.Join(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sent a malformed frame and was killed")
	good := startProc(t, consume, jobs{Q: q, Stop: 2})
	require.NoError(t, q.Put(ctx, 2))
	require.NoError(t, q.Join(ctx), "the item the dropped child held went to the other one")
	require.NoError(t, good.Join(ctx))
	n, err := good.Result()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestQueueHandleNotForwarded(t *testing.T) {
	q := mp.NewQueue[int](0)
	_, _, err := mp.RoundTrip(q)
	require.Error(t, err, "a handle decodes only in a child")
	assert.Contains(t, err.Error(), "child process")
	_ = sync.Mutex{}
}

func TestQueueNotForwardedToGrandchild(t *testing.T) {
	ctx := t.Context()
	q := mp.NewQueue[int](0)
	p := startProc(t, forward, q)
	require.NoError(t, p.Join(ctx))
	msg, err := p.Result()
	require.NoError(t, err)
	assert.Contains(t, msg, "cannot be passed on")
}

func TestJoinableQueueJoinInChild(t *testing.T) {
	ctx := t.Context()
	q := mp.NewJoinableQueue[int](0)
	p := startProc(t, produceAndJoin, struct {
		Q *mp.JoinableQueue[int]
		N int
	}{q, 5})
	for i := range 5 {
		v, err := q.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, i, v)
		assert.True(t, p.Alive() || i == 4, "the child's Join waits for the parent's TaskDone")
		q.TaskDone()
	}
	require.NoError(t, p.Join(ctx))
}

func TestJoinableQueueTaskDoneTooOftenInChild(t *testing.T) {
	ctx := t.Context()
	q := mp.NewJoinableQueue[int](0)
	require.NoError(t, q.Put(ctx, 1))
	p := startProc(t, doneTwice, q)
	err := p.Join(ctx)
	var pe *mp.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, fmt.Sprint(pe.Value), "TaskDone called more times")
	require.NoError(t, q.Join(ctx), "the one item was marked done")
}

// FuzzQueueMessages feeds arbitrary bytes to the parsers of what crosses
// between processes: a queue handle and a batch of items. They must fail
// cleanly, never panic or accept a batch that overruns its bytes.
func FuzzQueueMessages(f *testing.F) {
	f.Add([]byte{1, 1, 2, 0, 'i', 'n', 't'}, []byte{2, 1, 1}, []byte{7, 8})
	f.Add([]byte{}, []byte{1, 200}, []byte{})
	f.Fuzz(func(t *testing.T, handle, header, raw []byte) {
		var q mp.Queue[int]
		assert.Error(t, q.GobDecode(handle), "outside a child every handle is refused")
		n, err := mp.ParseQueueItems(header, raw)
		if err == nil {
			assert.Positive(t, n)
		}
	})
}

func TestJoinableQueueCloseNowAcrossProcesses(t *testing.T) {
	ctx := t.Context()
	q := mp.NewJoinableQueue[int](0)
	out := mp.NewQueue[string](0)
	for i := range 5 {
		require.NoError(t, q.Put(ctx, i))
	}
	p := startProc(t, hang, jobs{Q: q, Out: out})
	_, err := out.Get(ctx)
	require.NoError(t, err)
	q.CloseNow()
	assert.ErrorIs(t, q.Put(ctx, 9), mp.ErrClosed)
	require.NoError(t, p.Kill())
	<-p.Done()
	require.NoError(t, q.Join(ctx), "the items the killed child held are discarded, not redelivered")
	assert.Equal(t, 0, q.Len())
}
