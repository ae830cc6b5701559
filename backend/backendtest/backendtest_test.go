package backendtest

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	mp.Main()
	goleak.VerifyTestMain(m)
}

// The suite's verdicts are only as good as its helpers: these tests show
// that each can fail.

func TestMaxOverlap(t *testing.T) {
	for _, c := range []struct {
		name  string
		spans []span
		want  int
	}{
		{"none", nil, 0},
		{"one", []span{{Start: 1, End: 5}}, 1},
		{"back to back", []span{{Start: 1, End: 5}, {Start: 5, End: 9}, {Start: 9, End: 12}}, 1},
		{"two", []span{{Start: 1, End: 5}, {Start: 4, End: 9}}, 2},
		{"three inside one", []span{{Start: 0, End: 100}, {Start: 10, End: 20}, {Start: 15, End: 30}, {Start: 40, End: 50}}, 3},
		{"unsorted", []span{{Start: 40, End: 50}, {Start: 15, End: 30}, {Start: 0, End: 100}, {Start: 10, End: 20}}, 3},
	} {
		assert.Equal(t, c.want, maxOverlap(c.spans), c.name)
	}
}

// recorder is a testing.TB that keeps the messages of Errorf.
type recorder struct {
	testing.TB
	msgs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func TestSameSlice(t *testing.T) {
	want := make([]int, 1000)
	for i := range want {
		want[i] = i
	}
	r := &recorder{TB: t}
	assert.True(t, sameSlice(r, "equal", want, append([]int(nil), want...)))
	assert.Empty(t, r.msgs)

	got := append([]int(nil), want...)
	got[617] = -1
	assert.False(t, sameSlice(r, "one changed", want, got))
	if assert.Len(t, r.msgs, 1) {
		assert.Contains(t, r.msgs[0], "first mismatch at index 617 of 1000: want 617, got -1")
		assert.Less(t, len(r.msgs[0]), 300, "the message shows the mismatch, not the slices")
	}

	r.msgs = nil
	assert.False(t, sameSlice(r, "short", want, want[:990]))
	if assert.Len(t, r.msgs, 1) {
		assert.Contains(t, r.msgs[0], "length 990, want 1000")
	}
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func TestWithinFailsWhatHangs(t *testing.T) {
	defer func(d time.Duration) { hangGuard = d }(hangGuard)
	hangGuard = 10 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		within(r, "a call that never returns", func() int { <-release; return 0 })
	}()
	<-done
	if assert.Len(t, r.msgs, 1) {
		assert.Contains(t, r.msgs[0], "a call that never returns did not return within 10ms")
	}

	r.msgs = nil
	done = make(chan struct{})
	go func() {
		defer close(done)
		within(r, "a call that panics", func() int { panic("boom") })
	}()
	<-done
	if assert.Len(t, r.msgs, 1) {
		assert.Contains(t, r.msgs[0], "a call that panics panicked: boom")
	}
	assert.Equal(t, 42, within(t, "a call that returns", func() int { return 42 }))
}
