package mp_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// resources is what a leak would show in this process: open descriptors,
// goroutines, and children that exited but were never reaped.
type resources struct {
	fds, goroutines, zombies int
}

func (r resources) String() string {
	return fmt.Sprintf("%d fds, %d goroutines, %d zombies", r.fds, r.goroutines, r.zombies)
}

func countResources(t *testing.T) resources {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return resources{fds: len(fds), goroutines: runtime.NumGoroutine(), zombies: zombies(t)}
}

// countBefore counts the resources at the start of a soak test. The
// spares come and go with the children, and each holds descriptors of
// this process's (its socket and its pidfd), so both counts are taken
// with spares turned off, which ends and reaps them: a spare waiting at
// one count and not at the other is no leak.
func countBefore(t *testing.T) resources {
	t.Helper()
	defer mp.SetSpares(mp.SetSpares(0))
	return countResources(t)
}

// zombies counts this process's children in state Z.
func zombies(t *testing.T) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	me := strconv.Itoa(os.Getpid())
	n := 0
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended while we looked
		}
		// The command name is in parentheses and may hold spaces; the
		// state and the parent's pid follow its closing parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) >= 2 && string(f[0]) == "Z" && string(f[1]) == me {
			n++
		}
	}
	return n
}

// requireFlat waits for the resources to come back to what they were at
// the start: the spawner thread and a reaped child's goroutines take a
// moment to go.
func requireFlat(t *testing.T, before resources) {
	t.Helper()
	// See countBefore.
	defer mp.SetSpares(mp.SetSpares(0))
	var now resources
	ok := assert.Eventually(t, func() bool {
		now = countResources(t)
		return now.fds <= before.fds && now.goroutines <= before.goroutines && now.zombies == 0
	}, 10*time.Second, 20*time.Millisecond)
	require.True(t, ok, "before: %v; after: %v", before, now)
}

// warmUp starts one child, so that what mp starts once per program (the
// signal watcher, for one) is there before the count.
func warmUp(t *testing.T) {
	t.Helper()
	p := mp.NewProcess(square, 2)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
}

// TestSoakProcessCycles starts and joins hundreds of child processes, some
// of which fail or are killed, and checks that descriptors, goroutines and
// unreaped children are flat afterwards.
func TestSoakProcessCycles(t *testing.T) {
	cycles := 200
	if testing.Short() {
		cycles = 30
	}
	ctx := t.Context()
	warmUp(t)
	before := countBefore(t)
	for i := range cycles {
		switch i % 3 {
		case 0:
			p := mp.NewProcess(square, i)
			require.NoError(t, p.Start())
			require.NoError(t, p.Join(ctx))
			v, err := p.Result()
			require.NoError(t, err)
			require.Equal(t, i*i, v)
		case 1:
			p := mp.NewProcess(failWith, "panic")
			require.NoError(t, p.Start())
			var pe *mp.PanicError
			require.ErrorAs(t, p.Join(ctx), &pe)
		default:
			p := mp.NewProcess(napUntilCancelled, time.Hour)
			require.NoError(t, p.Start())
			require.NoError(t, p.Kill())
			var ee *mp.ExitError
			require.ErrorAs(t, p.Join(ctx), &ee)
			code, ok := p.ExitCode()
			require.True(t, ok)
			require.Equal(t, -9, code)
		}
	}
	requireFlat(t, before)
}

// TestSoakProcessPoolRestarts creates, uses and ends process pools over
// and over, half of them by Terminate, and checks that nothing is left.
func TestSoakProcessPoolRestarts(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 6
	}
	ctx := t.Context()
	warmUp(t)
	before := countBefore(t)
	for i := range rounds {
		p := mp.NewProcessPool(2)
		out, err := mp.Map(ctx, p, square, []int{1, 2, 3, 4, 5})
		require.NoError(t, err)
		require.Equal(t, []int{1, 4, 9, 16, 25}, out)
		if i%2 == 0 {
			p.Close()
		} else {
			r := mp.ApplyAsync(ctx, p, napUntilCancelled, time.Hour)
			p.Terminate()
			_, err := r.Get(ctx)
			require.ErrorIs(t, err, mp.ErrTerminated)
		}
		require.NoError(t, p.Join(ctx))
	}
	requireFlat(t, before)
}
