//go:build unix

package mp_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// childView is what a task sees of the process it runs in.
type childView struct {
	Info       mp.ProcessInfo
	Env        string // MP_TEST_SPARE's value
	GOMAXPROCS int
	EnvProcs   string // GOMAXPROCS's value in the environment
}

var viewChild = mp.Register(func(_ context.Context, _ struct{}) (childView, error) {
	return childView{
		Info:       mp.CurrentProcess(),
		Env:        os.Getenv("MP_TEST_SPARE"),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		EnvProcs:   os.Getenv("GOMAXPROCS"),
	}, nil
})

// warmSpare turns spares on for the test, with one spare, and returns the
// pid of a spare ready to be handed a task.
func warmSpare(t *testing.T) int {
	t.Helper()
	prev := mp.SetSpares(1)
	t.Cleanup(func() { mp.SetSpares(prev) })
	// Spares start once the program has started a child.
	p := mp.NewProcess(square, 2)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
	pid := mp.AwaitSpare(20 * time.Second)
	require.NotZero(t, pid, "a spare became ready")
	return pid
}

// awaitZombie waits until pid has exited and not been reaped. The main
// thread shows as a zombie while the others may still be ending and
// holding the process's descriptors, so it waits for those too.
func awaitZombie(t *testing.T, pid int) {
	t.Helper()
	eventually(t, fmt.Sprintf("process %d to exit", pid), func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		return len(f) > 0 && f[0] == "Z" && len(tasks) <= 1 && len(fds) == 0
	})
}

// gone reports whether pid has been reaped.
func gone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return os.IsNotExist(err)
}

func TestSpareTakesStart(t *testing.T) {
	pid := warmSpare(t)
	assert.False(t, slices.ContainsFunc(mp.ActiveChildren(), func(c mp.ProcessInfo) bool { return c.Pid == pid }),
		"a waiting spare is not listed")

	p := mp.NewProcess(viewChild, struct{}{})
	p.Name = "taker"
	require.NoError(t, p.Start())
	assert.Equal(t, pid, p.Pid(), "the start took the spare")
	assert.True(t, slices.ContainsFunc(mp.ActiveChildren(), func(c mp.ProcessInfo) bool { return c.Pid == pid && c.Name == "taker" }) || !p.Alive(),
		"a spare handed a task is listed as the child it became")
	require.NoError(t, p.Join(t.Context()))
	v, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, mp.ProcessInfo{Name: "taker", Pid: pid, ParentPid: os.Getpid(), IsChild: true}, v.Info)
	code, ok := p.ExitCode()
	require.True(t, ok)
	assert.Zero(t, code)
	assert.NotZero(t, mp.AwaitSpare(20*time.Second), "another spare took its place")
}

// TestSpareStartsCold checks that a start a spare cannot honour execs a
// child afresh and leaves the spare waiting.
func TestSpareStartsCold(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, p *mp.Process[childView])
		check func(t *testing.T, v childView)
	}{
		{"Env", func(t *testing.T, p *mp.Process[childView]) {
			p.Env = []string{"MP_TEST_SPARE=env"}
		}, func(t *testing.T, v childView) {
			assert.Equal(t, "env", v.Env, "package initialisation could see it")
		}},
		{"Stdout", func(t *testing.T, p *mp.Process[childView]) {
			p.Stdout = &bytes.Buffer{}
		}, nil},
		{"Stderr", func(t *testing.T, p *mp.Process[childView]) {
			p.Stderr = &bytes.Buffer{}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid := warmSpare(t)
			p := mp.NewProcess(viewChild, struct{}{})
			tt.setup(t, p)
			require.NoError(t, p.Start())
			assert.NotEqual(t, pid, p.Pid(), "started afresh")
			require.NoError(t, p.Join(t.Context()))
			v, err := p.Result()
			require.NoError(t, err)
			if tt.check != nil {
				tt.check(t, v)
			}
			assert.Contains(t, mp.ReadySparePids(), pid, "the spare still waits")
		})
	}
}

// TestSpareEnvironmentChanged checks that a spare started before the
// program changed its environment is not used: the child must see the
// environment of the time of Start.
func TestSpareEnvironmentChanged(t *testing.T) {
	pid := warmSpare(t)
	t.Setenv("MP_TEST_SPARE", "changed")
	p := mp.NewProcess(viewChild, struct{}{})
	require.NoError(t, p.Start())
	assert.NotEqual(t, pid, p.Pid())
	require.NoError(t, p.Join(t.Context()))
	v, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, "changed", v.Env)
	eventually(t, "the stale spare reaped", func() bool { return gone(pid) })
}

// TestSpareDiedWhileWaiting checks that a spare that died while it waited
// is never handed a task, and is reaped and replaced.
func TestSpareDiedWhileWaiting(t *testing.T) {
	pid := warmSpare(t)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	awaitZombie(t, pid)
	p := mp.NewProcess(viewChild, struct{}{})
	require.NoError(t, p.Start())
	assert.NotEqual(t, pid, p.Pid(), "not handed to the dead spare")
	require.NoError(t, p.Join(t.Context()))
	v, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, p.Pid(), v.Info.Pid)
	eventually(t, "the dead spare reaped", func() bool { return gone(pid) })
	next := mp.AwaitSpare(20 * time.Second)
	assert.NotZero(t, next, "a new spare")
	assert.NotEqual(t, pid, next)
}

// TestSpareDiesBeforeTaskRuns hands a task to a spare that is already
// dead, as when it dies just after the start looked: the start succeeds,
// and Join reports the child's death as it would a cold child's.
func TestSpareDiesBeforeTaskRuns(t *testing.T) {
	pid := warmSpare(t)
	defer mp.CheckSpares(false)()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	awaitZombie(t, pid)
	p := mp.NewProcess(viewChild, struct{}{})
	require.NoError(t, p.Start())
	require.Equal(t, pid, p.Pid(), "handed to the dead spare")
	var ee *mp.ExitError
	require.ErrorAs(t, p.Join(t.Context()), &ee)
	assert.Equal(t, pid, ee.Pid)
	assert.Equal(t, -9, ee.ExitCode)
	code, ok := p.ExitCode()
	require.True(t, ok)
	assert.Equal(t, -9, code)
	assert.True(t, gone(pid), "reaped")
}

// TestSparePoolWorker checks that a process pool's workers take spares,
// which become workers with the pool's GOMAXPROCS and names.
func TestSparePoolWorker(t *testing.T) {
	pid := warmSpare(t)
	p := newProcessPool(t, 1, mp.MaxTasksPerChild(1), mp.WorkerGOMAXPROCS(1))
	seen := map[int]bool{}
	for range 4 {
		v, err := mp.Apply(t.Context(), p, viewChild, struct{}{})
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(v.Info.Name, "PoolWorker-"), v.Info.Name)
		if _, set := os.LookupEnv("GOMAXPROCS"); !set {
			assert.Equal(t, 1, v.GOMAXPROCS)
			assert.Equal(t, "1", v.EnvProcs)
		}
		assert.False(t, seen[v.Info.Pid], "a fresh worker for every task")
		seen[v.Info.Pid] = true
	}
	assert.True(t, seen[pid], "the spare became a worker")
	joinClean(t, p)
}

func TestSparesOff(t *testing.T) {
	prev := mp.SetSpares(0)
	defer mp.SetSpares(prev)
	assert.Empty(t, mp.SparePids(), "lowering the count ends the spares at once")
	p := mp.NewProcess(square, 3)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
	time.Sleep(20 * time.Millisecond)
	mp.SettleSpares()
	assert.Empty(t, mp.SparePids())
	assert.Equal(t, 0, mp.SetSpares(prev), "SetSpares returns the previous count")
}

func TestSparesFromEnv(t *testing.T) {
	for env, want := range map[string]int{"": 1, "0": 0, "3": 3, "-2": 0, "many": 1} {
		t.Setenv("MP_SPARES", env)
		assert.Equal(t, want, mp.SparesFromEnv(), "MP_SPARES=%q", env)
	}
}

// TestSpareProcessSIGINT checks that a Process child that began as a spare
// dies of SIGINT as a child started afresh does: only a spare that
// becomes a pool worker ignores it.
func TestSpareProcessSIGINT(t *testing.T) {
	pid := warmSpare(t)
	p := mp.NewProcess(napUntilCancelled, time.Hour)
	require.NoError(t, p.Start())
	require.Equal(t, pid, p.Pid())
	require.NoError(t, syscall.Kill(pid, syscall.SIGINT))
	var ee *mp.ExitError
	require.ErrorAs(t, p.Join(t.Context()), &ee)
	assert.Equal(t, -2, ee.ExitCode)
}
