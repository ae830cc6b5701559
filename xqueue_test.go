//go:build unix

package mp_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
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

// putsArgs is the argument of putUntilRefused: one of Q and J is set.
type putsArgs struct {
	Q *mp.Queue[int]
	J *mp.JoinableQueue[int]
	N int // items to put; 0: until a Put fails
}

// putsResult is what putUntilRefused reports.
type putsResult struct {
	Accepted int    // Puts that returned nil
	Err      string // the error of the Put that failed
	Closed   bool   // that error wraps mp.ErrClosed
}

// putUntilRefused puts 0, 1, 2, ... on the queue until N are put or a
// Put fails.
func putUntilRefused(ctx context.Context, a putsArgs) (putsResult, error) {
	put := func(v int) error {
		if a.J != nil {
			return a.J.Put(ctx, v)
		}
		return a.Q.Put(ctx, v)
	}
	for i := 0; a.N == 0 || i < a.N; i++ {
		if err := put(i); err != nil {
			return putsResult{Accepted: i, Err: err.Error(), Closed: errors.Is(err, mp.ErrClosed)}, nil
		}
	}
	return putsResult{Accepted: a.N}, nil
}

// touchyArgs is the argument of putTouchy: one of Q and J is set.
type touchyArgs struct {
	Q *mp.Queue[touchy]
	J *mp.JoinableQueue[touchy]
}

// putTouchy puts a good item, one whose GobDecode panics in the parent,
// and two more good ones, waiting (with Len) for the answers to the Puts
// in flight before the third, and returns the Puts' errors as errText
// gives them.
func putTouchy(ctx context.Context, a touchyArgs) ([]string, error) {
	// The method values are taken only from the queue that is set: one
	// of a nil pointer to a queue panics, as with any promoted method.
	var put func(touchy) error
	var length func() int
	if a.J != nil {
		put, length = func(v touchy) error { return a.J.Put(ctx, v) }, a.J.Len
	} else {
		put, length = func(v touchy) error { return a.Q.Put(ctx, v) }, a.Q.Len
	}
	var errs []string
	errs = append(errs, errText(put(touchy{N: 1})))
	errs = append(errs, errText(put(touchy{N: 2, Where: "parent", Op: "decode"})))
	length()
	errs = append(errs, errText(put(touchy{N: 3})))
	errs = append(errs, errText(put(touchy{N: 4})))
	return errs, nil
}

// errText is "" for nil, the message otherwise, prefixed with "panic: "
// when err wraps a *mp.PanicError.
func errText(err error) string {
	if err == nil {
		return ""
	}
	var pe *mp.PanicError
	if errors.As(err, &pe) {
		return "panic: " + err.Error()
	}
	return err.Error()
}

func init() {
	mp.Register(putUntilRefused)
	mp.Register(putTouchy)
}

// refusedRe finds the count in a child's report of Puts the parent refused
// after they had returned.
var refusedRe = regexp.MustCompile(`(\d+) items this process put never reached the queue`)

// refusedIn returns the number of items that the child's error msg says
// were refused after their Put had returned, 0 if it says none.
func refusedIn(t *testing.T, msg string) int {
	t.Helper()
	m := refusedRe.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// TestQueueChildPutAfterClose checks that a child's Put into a queue the
// parent has closed returns ErrClosed, as the parent's does, for every
// kind of queue: none of its items is accepted.
func TestQueueChildPutAfterClose(t *testing.T) {
	for _, tc := range []struct {
		name     string
		joinable bool
		maxsize  int
	}{
		{"Queue", false, 0},
		{"bounded Queue", false, 100},
		{"JoinableQueue", true, 0},
		{"bounded JoinableQueue", true, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			a := putsArgs{N: 50}
			var q *mp.Queue[int]
			var j *mp.JoinableQueue[int]
			if tc.joinable {
				j = mp.NewJoinableQueue[int](tc.maxsize)
				j.Close()
				a.J = j
			} else {
				q = mp.NewQueue[int](tc.maxsize)
				q.Close()
				a.Q = q
			}
			p := startProc(t, putUntilRefused, a)
			require.NoError(t, p.Join(ctx))
			r, err := p.Result()
			require.NoError(t, err)
			assert.Equal(t, putsResult{Err: mp.ErrClosed.Error(), Closed: true}, r)
			if tc.joinable {
				assert.NoError(t, j.Join(ctx))
				_, err = j.TryGet()
			} else {
				_, err = q.TryGet()
			}
			assert.ErrorIs(t, err, mp.ErrClosed, "nothing reached the queue")
		})
	}
}

// TestQueueChildPutRacesClose closes a queue while a child streams Puts
// into it: every item whose Put returned nil either reaches the queue or
// is counted in the error of the child's next Put, and, for a
// JoinableQueue, in the ErrLost of the parent's Join.
func TestQueueChildPutRacesClose(t *testing.T) {
	for _, joinable := range []bool{false, true} {
		t.Run(map[bool]string{false: "Queue", true: "JoinableQueue"}[joinable], func(t *testing.T) {
			ctx := t.Context()
			var a putsArgs
			var get func() (int, error)
			var length func() int
			if joinable {
				a.J = mp.NewJoinableQueue[int](0)
				get, length = a.J.TryGet, a.J.Len
			} else {
				a.Q = mp.NewQueue[int](0)
				get, length = a.Q.TryGet, a.Q.Len
			}
			p := startProc(t, putUntilRefused, a)
			for length() < 100 {
				time.Sleep(time.Millisecond)
			}
			if joinable {
				a.J.Close()
			} else {
				a.Q.Close()
			}
			require.NoError(t, p.Join(ctx))
			r, err := p.Result()
			require.NoError(t, err)
			require.True(t, r.Closed, "the child's Put fails with ErrClosed: %s", r.Err)
			refused := refusedIn(t, r.Err)
			drained := 0
			for {
				v, err := get()
				if errors.Is(err, mp.ErrClosed) {
					break
				}
				require.NoError(t, err)
				require.Equal(t, drained, v, "the items arrive in order")
				drained++
				if joinable {
					a.J.TaskDone()
				}
			}
			assert.Equal(t, r.Accepted, drained+refused, "accepted %d, drained %d, refused %d: %s", r.Accepted, drained, refused, r.Err)
			if !joinable {
				return
			}
			err = a.J.Join(ctx)
			if refused == 0 {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, mp.ErrLost)
			assert.ErrorContains(t, err, fmt.Sprintf("%d items that process %d put never reached the queue", refused, p.Pid()))
			assert.ErrorIs(t, err, mp.ErrClosed)
		})
	}
}

// TestQueueChildPutDecodePanics puts from a child an item whose GobDecode
// panics in the parent: the Put that carried it fails with a
// *PanicError that says it came from decoding the queue item, at once for
// a bounded queue and on the next Put when Puts stream; the parent and the
// queue go on, and a JoinableQueue's Join reports the item.
func TestQueueChildPutDecodePanics(t *testing.T) {
	want := []string{"decoding the queue item", "touchy: decode in the parent"}
	for _, tc := range []struct {
		name     string
		joinable bool
		maxsize  int
	}{
		{"Queue", false, 0},
		{"bounded Queue", false, 100},
		{"JoinableQueue", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			var a touchyArgs
			// TryGet: once the child is done, its items are in the queue.
			var get func() (touchy, error)
			if tc.joinable {
				a.J = mp.NewJoinableQueue[touchy](tc.maxsize)
				get = a.J.TryGet
			} else {
				a.Q = mp.NewQueue[touchy](tc.maxsize)
				get = a.Q.TryGet
			}
			p := startProc(t, putTouchy, a)
			require.NoError(t, p.Join(ctx))
			errs, err := p.Result()
			require.NoError(t, err)
			require.Len(t, errs, 4)
			assert.Empty(t, errs[0])
			failed, arrived := errs[1], []int{1, 3, 4}
			if tc.maxsize == 0 {
				// Streamed: the Put returned nil; the next one reports
				// it, instead of putting its own item.
				assert.Empty(t, errs[1])
				failed, arrived = errs[2], []int{1, 4}
				assert.Contains(t, failed, "1 items this process put never reached the queue")
			} else {
				assert.Empty(t, errs[2])
			}
			assert.True(t, strings.HasPrefix(failed, "panic: "), "a *PanicError: %s", failed)
			for _, w := range want {
				assert.Contains(t, failed, w)
			}
			assert.Contains(t, failed, "touchy", "the stack is that of the panic")
			assert.Empty(t, errs[3])
			for _, n := range arrived {
				v, err := get()
				require.NoError(t, err)
				assert.Equal(t, n, v.N)
				if tc.joinable {
					a.J.TaskDone()
				}
			}
			if !tc.joinable {
				return
			}
			err = a.J.Join(ctx)
			require.ErrorIs(t, err, mp.ErrLost)
			assert.ErrorContains(t, err, fmt.Sprintf("1 items that process %d put never reached the queue", p.Pid()))
			var pe *mp.PanicError
			require.ErrorAs(t, err, &pe)
			for _, w := range want {
				assert.ErrorContains(t, err, w)
			}
			assert.NoError(t, a.J.Join(ctx), "the loss is reported once")
		})
	}
}

// TestJoinableQueueLostCountsOnlyUndone kills consumers that hold two
// items, one got and one prefetched, until both have been delivered three
// times; the last consumer marks the item it got done before it is
// killed. Join's ErrLost counts only the item never marked done.
func TestJoinableQueueLostCountsOnlyUndone(t *testing.T) {
	ctx := t.Context()
	q := mp.NewJoinableQueue[int](0)
	out := mp.NewQueue[string](0)
	require.NoError(t, q.Put(ctx, 1))
	require.NoError(t, q.Put(ctx, 2))
	var pid int
	for round := range 3 {
		p := startProc(t, mp.HoldTwo, mp.HoldTwoArgs{Q: q, Out: out, Done: round == 2})
		v, err := out.Get(ctx)
		require.NoError(t, err)
		require.Equal(t, "1", v, "the item got first is delivered first again")
		pid = p.Pid()
		require.NoError(t, p.Kill())
		<-p.Done()
	}
	err := q.Join(ctx)
	require.ErrorIs(t, err, mp.ErrLost)
	assert.ErrorContains(t, err, fmt.Sprintf(": 1 items were not finished: process %d died", pid))
	assert.NoError(t, q.Join(ctx), "the loss is reported once")
	assert.Equal(t, 0, q.Len())
}

// allResult is what rangeTouchy reports.
type allResult struct {
	Got  []int    // the numbers of the items All yielded
	Errs []string // the errors it yielded, as errText gives them
}

// rangeTouchy ranges over q with All until All ends by itself.
func rangeTouchy(ctx context.Context, q *mp.Queue[touchy]) (allResult, error) {
	var r allResult
	for v, err := range q.All(ctx) {
		if err != nil {
			r.Errs = append(r.Errs, errText(err))
			continue
		}
		r.Got = append(r.Got, v.N)
	}
	return r, nil
}

func init() { mp.Register(rangeTouchy) }

// TestQueueAllInChildYieldsDecodeError gives a child that ranges over a
// queue with All an item whose GobDecode panics there: the loop sees the
// *PanicError as its last pair instead of ending as if the queue were
// closed, and the items after it stay in the queue.
func TestQueueAllInChildYieldsDecodeError(t *testing.T) {
	ctx := t.Context()
	q := mp.NewQueue[touchy](0)
	for _, v := range []touchy{{N: 1}, {N: 2, Where: "child", Op: "decode"}, {N: 3}} {
		require.NoError(t, q.Put(ctx, v))
	}
	q.Close()
	p := startProc(t, rangeTouchy, q)
	require.NoError(t, p.Join(ctx))
	r, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, []int{1}, r.Got)
	require.Len(t, r.Errs, 1, "one error, and All ends after it")
	assert.True(t, strings.HasPrefix(r.Errs[0], "panic: "), "a *PanicError: %s", r.Errs[0])
	assert.Contains(t, r.Errs[0], "touchy: decode in the child")
	var rest []int
	for v, err := range q.All(ctx) {
		require.NoError(t, err)
		rest = append(rest, v.N)
	}
	assert.Equal(t, []int{3}, rest, "the item the child did not take is back in the queue")
}
