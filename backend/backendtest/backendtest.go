// Package backendtest states once the semantics that every back-end of an
// [mp.Pool] must keep, as testing/fstest does for file systems and
// nettest for connections: a back-end that does not pass [TestPool] is not
// done.
//
// The suite uses mp's public API only (Map, MapSeq, MapSeqUnordered,
// Apply, ApplyAsync, AsyncResult, Close, Terminate, Join, Stats), and only
// tasks registered with [mp.Register] at package level, so it runs
// unchanged on goroutines, on mp's worker processes and on workers of
// other machines. A program that runs it on a back-end whose tasks leave
// the process must call [mp.Main] first in its TestMain, as every program
// using such a back-end does.
//
// The suite checks behaviour, never speed. It does assume that the
// back-end's workers share the test's wall clock and file system, as
// workers on the test's own machine do: "at most N tasks at once" is
// checked on the intervals the tasks report, and which tasks ran is read
// from files they leave in a temporary directory.
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp"
)

// hangGuard bounds every wait of the suite, so that a back-end that loses
// a wake-up or a result fails with the name of what hung instead of
// hanging the test binary. It is a variable for the suite's own tests.
var hangGuard = 20 * time.Second

// TestPool runs the pool semantics every back-end must keep against pools
// made by newPool, each check in a sub-test of t. newPool returns a new
// pool of the given number of workers (the suite asks for one to three);
// the t it gets is the sub-test's, for a constructor that has resources
// of its own to clean up. The suite closes or terminates, and joins,
// every pool it makes.
//
// The checks follow the contract of [mp.Pool]: results keep the order of
// the input; at most the pool's number of workers run at once; [mp.Map]
// fails fast and drains; a panic becomes a *[mp.PanicError]; Terminate
// resolves every pending result; Join reports the errors nobody collected,
// once; submitting after Close returns [mp.ErrClosed]; the end of a
// caller's context ends its tasks with its cause; [mp.MapSeq] reads its
// input a bounded distance ahead, and breaking out of it leaves nothing
// running.
//
// Where the contract lets back-ends differ, the suite accepts each allowed
// outcome: after Terminate a task that ran in-process keeps its own
// return value while one in another process is killed and gets
// ErrTerminated, so a running task's result must be either.
func TestPool(t *testing.T, newPool func(t *testing.T, workers int) *mp.Pool) {
	s := &suite{newPool: newPool}
	for _, c := range []struct {
		name  string
		check func(*testing.T)
	}{
		{"Workers", s.workers},
		{"ApplyAsync", s.applyAsync},
		{"MapOrder", s.mapOrder},
		{"MapSeqOrder", s.mapSeqOrder},
		{"MapSeqUnorderedOnce", s.mapSeqUnorderedOnce},
		{"AtMostNAtOnce", s.atMostN},
		{"MapFailFast", s.mapFailFast},
		{"MapSeqGoesOnAfterError", s.mapSeqGoesOn},
		{"Panic", s.panics},
		{"CloseRunsQueued", s.closeRunsQueued},
		{"ClosedRefuses", s.closedRefuses},
		{"JoinBeforeClosePanics", s.joinBeforeClose},
		{"JoinReportsUncollected", s.joinReportsUncollected},
		{"Then", s.then},
		{"Terminate", s.terminate},
		{"TerminateMap", s.terminateMap},
		{"CancelBeforeStart", s.cancelBeforeStart},
		{"CancelRunning", s.cancelRunning},
		{"MapCancel", s.mapCancel},
		{"MapSeqCancel", s.mapSeqCancel},
		{"MapSeqLookAhead", s.mapSeqLookAhead},
		{"MapSeqBreak", s.mapSeqBreak},
	} {
		t.Run(c.name, c.check)
	}
}

type suite struct {
	newPool func(t *testing.T, workers int) *mp.Pool
}

// errHang is the cause of the contexts that bound the suite's waits.
var errHang = errors.New("backendtest: hang guard expired")

// pool returns a new pool of workers workers, which t's cleanup
// terminates and joins.
func (s *suite) pool(t *testing.T, workers int) *mp.Pool {
	t.Helper()
	p := s.newPool(t, workers)
	if p == nil {
		t.Fatalf("newPool(%d) returned nil", workers)
	}
	t.Cleanup(func() {
		p.Terminate()
		ctx, cancel := context.WithTimeoutCause(context.Background(), hangGuard, errHang)
		defer cancel()
		// The errors a check left uncollected are its own business; only
		// a Join that does not return is the back-end's.
		if err := p.Join(ctx); errors.Is(err, errHang) {
			t.Errorf("Join after Terminate did not return within %v", hangGuard)
		}
	})
	return p
}

// guardCtx returns a context that ends with cause errHang after hangGuard,
// for waits that take a context.
func guardCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeoutCause(t.Context(), hangGuard, errHang)
	t.Cleanup(cancel)
	return ctx
}

// within runs f on a goroutine of its own and returns its result, failing
// t if f has not returned within hangGuard. f must not call t's Fatal
// methods, which belong to the test's goroutine; a panic in f fails t.
func within[T any](t testing.TB, what string, f func() T) T {
	t.Helper()
	type outcome struct {
		v     T
		panic any
		ok    bool
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			if !o.ok {
				o.panic = recover()
			}
			done <- o
		}()
		o.v = f()
		o.ok = true
	}()
	timer := time.NewTimer(hangGuard)
	defer timer.Stop()
	select {
	case o := <-done:
		if !o.ok {
			t.Fatalf("%s panicked: %v", what, o.panic)
		}
		return o.v
	case <-timer.C:
		t.Fatalf("%s did not return within %v: the back-end hangs", what, hangGuard)
		panic("unreachable")
	}
}

// get waits for r with a hang guard: Get must never hang once the task
// has been submitted to a pool that is running, closed or terminated.
func get[R any](t *testing.T, what string, r *mp.AsyncResult[R]) (R, error) {
	t.Helper()
	v, err := r.Get(guardCtx(t))
	if errors.Is(err, errHang) {
		t.Fatalf("%s: Get did not return within %v", what, hangGuard)
	}
	return v, err
}

// join closes p and joins it with a hang guard.
func join(t *testing.T, p *mp.Pool) error {
	t.Helper()
	p.Close()
	err := p.Join(guardCtx(t))
	if errors.Is(err, errHang) {
		t.Fatalf("Join after Close did not return within %v", hangGuard)
	}
	return err
}

// sameSlice fails t if got differs from want, naming the first index at
// which they differ rather than printing both slices whole.
func sameSlice[T comparable](t testing.TB, what string, want, got []T) bool {
	t.Helper()
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			t.Errorf("%s: first mismatch at index %d of %d: want %v, got %v (want[%d:] = %v, got[%d:] = %v)",
				what, i, len(want), want[i], got[i], i, head(want[i:]), i, head(got[i:]))
			return false
		}
	}
	if len(want) != len(got) {
		t.Errorf("%s: length %d, want %d (the first %d agree)", what, len(got), len(want), min(len(want), len(got)))
		return false
	}
	return true
}

// head returns at most the first five elements of s, for messages.
func head[T any](s []T) []T { return s[:min(len(s), 5)] }

// squares returns 0..n-1 and their squares.
func squares(n int) (items, want []int) {
	items, want = make([]int, n), make([]int, n)
	for i := range items {
		items[i], want[i] = i, i*i
	}
	return items, want
}

// maxOverlap returns the largest number of spans that overlap at one
// instant. A span ending at the instant another starts does not overlap
// it.
func maxOverlap(spans []span) int {
	type edge struct {
		at    int64
		delta int
	}
	edges := make([]edge, 0, 2*len(spans))
	for _, s := range spans {
		edges = append(edges, edge{s.Start, +1}, edge{s.End, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if a.at != b.at {
			return int(min(max(a.at-b.at, -1), 1))
		}
		return a.delta - b.delta // ends first
	})
	n, most := 0, 0
	for _, e := range edges {
		n += e.delta
		most = max(most, n)
	}
	return most
}

// panicMessage returns the message of the panic f raises, or "" and false
// if it returns.
func panicMessage(f func()) (msg string, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			msg, panicked = fmt.Sprint(v), true
		}
	}()
	f()
	return "", false
}

// mentions reports whether err's message contains every one of subs.
func mentions(err error, subs ...string) bool {
	if err == nil {
		return false
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			return false
		}
	}
	return true
}
