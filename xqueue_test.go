//go:build unix

package mp_test

import (
	"context"
	"errors"
	"fmt"
	"os"
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

func init() {
	mp.Register(consume)
	mp.Register(produce)
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
	_ = slices.Sort[[]int]
	_ = strconv.Itoa
	_ = sync.Mutex{}
	_ = time.Now
}
