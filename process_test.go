//go:build unix

package mp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tasks the process tests run in children. They are registered at
// package level, so the child (a fresh run of the test binary) has them.

// napUntilCancelled sleeps for d, ignoring nothing: it returns early when
// its context is cancelled.
func napUntilCancelled(ctx context.Context, d time.Duration) (struct{}, error) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return struct{}{}, nil
}

func failWith(_ context.Context, kind string) (int, error) {
	switch kind {
	case "typed":
		return 0, fmt.Errorf("while working: %w", quotaError{Limit: 7})
	case "sentinel":
		return 0, fmt.Errorf("queue: %w", mp.ErrClosed)
	case "panic":
		panic("boom in child")
	case "exit3":
		os.Exit(3)
	}
	return 0, errors.New("plain failure")
}

func whoAmI(_ context.Context, _ struct{}) (mp.ProcessInfo, error) { return mp.CurrentProcess(), nil }

// middle starts a grandchild running square and returns its result plus
// one: a depth-2 tree.
func middle(ctx context.Context, x int) (int, error) {
	p := mp.NewProcess(square, x)
	if err := p.Start(); err != nil {
		return 0, err
	}
	if err := p.Join(ctx); err != nil {
		return 0, err
	}
	r, err := p.Result()
	return r + 1, err
}

// holdGrandchild starts a long-sleeping grandchild, writes its pid to the
// file named by path, and sleeps: the middle of the no-orphans test.
func holdGrandchild(ctx context.Context, path string) (struct{}, error) {
	p := mp.NewProcess(napUntilCancelled, time.Hour)
	if err := p.Start(); err != nil {
		return struct{}{}, err
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(p.Pid())), 0o600); err != nil {
		return struct{}{}, err
	}
	return struct{}{}, p.Join(ctx)
}

func echoBytes(_ context.Context, b []byte) ([]byte, error) { return append(b, '!'), nil }

func shout(_ context.Context, s string) (struct{}, error) {
	fmt.Fprintln(os.Stderr, "shouting", s)
	os.Exit(4)
	return struct{}{}, nil
}

// goroutines reports how many goroutines the child runs besides the
// runtime's own: the task's, and the connection's reader once the child
// serves its parent.
func goroutines(_ context.Context, _ struct{}) (int, error) { return runtime.NumGoroutine(), nil }

// goroutinesAfterPut does the same after putting one item on q.
func goroutinesAfterPut(ctx context.Context, q *mp.Queue[int]) (int, error) {
	if err := q.Put(ctx, 1); err != nil {
		return 0, err
	}
	return runtime.NumGoroutine(), nil
}

func init() {
	mp.Register(square)
	mp.Register(goroutines)
	mp.Register(goroutinesAfterPut)
	mp.Register(napUntilCancelled)
	mp.Register(failWith)
	mp.Register(whoAmI)
	mp.Register(middle)
	mp.Register(holdGrandchild)
	mp.Register(echoBytes)
	mp.Register(shout)
}

func TestProcessLifecycle(t *testing.T) {
	p := mp.NewProcess(square, 12)
	assert.False(t, p.Alive())
	assert.Zero(t, p.Pid())
	_, ok := p.ExitCode()
	assert.False(t, ok)
	require.Error(t, p.Join(t.Context()), "Join before Start")
	require.Error(t, p.Kill(), "Kill before Start")

	require.NoError(t, p.Start())
	require.Error(t, p.Start(), "Start twice")
	assert.Positive(t, p.Pid())
	assert.NotEqual(t, os.Getpid(), p.Pid())

	require.NoError(t, p.Join(t.Context()))
	<-p.Done()
	assert.False(t, p.Alive())
	code, ok := p.ExitCode()
	assert.True(t, ok)
	assert.Equal(t, 0, code)
	r, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, 144, r)
	assert.NoError(t, p.Terminate(), "Terminate after exit does nothing")
	assert.NoError(t, p.Kill(), "Kill after exit does nothing")
}

func TestProcessAliveWhileRunning(t *testing.T) {
	p := mp.NewProcess(napUntilCancelled, time.Hour)
	require.NoError(t, p.Start())
	assert.True(t, p.Alive())
	_, err := p.Result()
	assert.Error(t, err, "Result before the end")
	require.NoError(t, p.Kill())
	require.Error(t, p.Join(t.Context()))
	assert.False(t, p.Alive())
}

func TestProcessJoinTimeoutLeavesChildRunning(t *testing.T) {
	p := mp.NewProcess(napUntilCancelled, time.Hour)
	require.NoError(t, p.Start())
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Join(ctx), context.DeadlineExceeded)
	assert.True(t, p.Alive())
	require.NoError(t, syscall.Kill(p.Pid(), 0), "the child still exists")
	require.NoError(t, p.Kill())
	<-p.Done()
}

func TestProcessTerminateAndKill(t *testing.T) {
	tests := []struct {
		name string
		stop func(p *mp.Process[struct{}]) error
		code int
	}{
		{"terminate", (*mp.Process[struct{}]).Terminate, -15},
		{"kill", (*mp.Process[struct{}]).Kill, -9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mp.NewProcess(napUntilCancelled, time.Hour)
			require.NoError(t, p.Start())
			require.NoError(t, tt.stop(p))
			require.NoError(t, tt.stop(p), "idempotent")
			err := p.Join(t.Context())
			var ee *mp.ExitError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, tt.code, ee.ExitCode)
			assert.Equal(t, p.Pid(), ee.Pid)
			code, ok := p.ExitCode()
			assert.True(t, ok)
			assert.Equal(t, tt.code, code)
			require.NoError(t, tt.stop(p), "fine after exit")
		})
	}
}

func TestProcessErrors(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		err := run(t, failWith, "plain")
		require.EqualError(t, err, "plain failure")
	})
	t.Run("gob-registered type", func(t *testing.T) {
		err := run(t, failWith, "typed")
		require.EqualError(t, err, "while working: quota 7 exceeded")
		var qe quotaError
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, 7, qe.Limit)
	})
	t.Run("sentinel", func(t *testing.T) {
		err := run(t, failWith, "sentinel")
		require.ErrorIs(t, err, mp.ErrClosed)
		assert.EqualError(t, err, "queue: mp: closed")
	})
	t.Run("panic", func(t *testing.T) {
		err := run(t, failWith, "panic")
		var pe *mp.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "boom in child", pe.Value)
		assert.Contains(t, string(pe.Stack), "failWith")
	})
	t.Run("exit code 1 after an error or a panic, as in Python", func(t *testing.T) {
		for _, how := range []string{"plain", "panic"} {
			p := mp.NewProcess(failWith, how)
			require.NoError(t, p.Start())
			require.Error(t, p.Join(t.Context()))
			code, ok := p.ExitCode()
			assert.True(t, ok)
			assert.Equal(t, 1, code, how)
		}
	})
	t.Run("os.Exit(3)", func(t *testing.T) {
		p := mp.NewProcess(failWith, "exit3")
		require.NoError(t, p.Start())
		var ee *mp.ExitError
		require.ErrorAs(t, p.Join(t.Context()), &ee)
		assert.Equal(t, 3, ee.ExitCode)
		code, _ := p.ExitCode()
		assert.Equal(t, 3, code)
	})
}

// run starts f(arg) in a child and returns Join's error.
func run[A, R any](t *testing.T, f mp.Func[A, R], arg A) error {
	_, err := result(t, f, arg)
	return err
}

// result starts f(arg) in a child and returns its result.
func result[A, R any](t *testing.T, f mp.Func[A, R], arg A) (R, error) {
	t.Helper()
	p := mp.NewProcess(f, arg)
	require.NoError(t, p.Start())
	if err := p.Join(t.Context()); err != nil {
		var zero R
		return zero, err
	}
	return p.Result()
}

func TestProcessCapturedStderrTail(t *testing.T) {
	var stderr bytes.Buffer
	p := mp.NewProcess(shout, "loudly")
	p.Stderr = &stderr
	require.NoError(t, p.Start())
	var ee *mp.ExitError
	require.ErrorAs(t, p.Join(t.Context()), &ee)
	assert.Equal(t, 4, ee.ExitCode)
	assert.Contains(t, string(ee.Stderr), "shouting loudly")
	assert.Contains(t, stderr.String(), "shouting loudly")
}

func TestProcessStdoutAndEnv(t *testing.T) {
	var out bytes.Buffer
	p := mp.NewProcess(printEnv, "MP_TEST_COLOUR")
	p.Stdout = &out
	p.Env = []string{"MP_TEST_COLOUR=teal"}
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
	assert.Equal(t, "MP_TEST_COLOUR=teal\n", out.String())
}

func printEnv(_ context.Context, key string) (struct{}, error) {
	fmt.Printf("%s=%s\n", key, os.Getenv(key))
	return struct{}{}, nil
}

func init() { mp.Register(printEnv) }

func TestProcessRawBytes(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3<<20)
	p := mp.NewProcess(echoBytes, big)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
	r, err := p.Result()
	require.NoError(t, err)
	require.Len(t, r, len(big)+1)
	assert.Equal(t, byte('!'), r[len(r)-1])
}

func TestProcessManyAtOnce(t *testing.T) {
	const n = 100
	ps := make([]*mp.Process[int], n)
	for i := range ps {
		ps[i] = mp.NewProcess(square, i)
		require.NoError(t, ps[i].Start())
	}
	for i, p := range ps {
		require.NoError(t, p.Join(t.Context()))
		r, err := p.Result()
		require.NoError(t, err)
		assert.Equal(t, i*i, r)
		code, ok := p.ExitCode()
		assert.True(t, ok)
		assert.Equal(t, 0, code)
	}
}

func TestProcessManyStartedConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			p := mp.NewProcess(square, i)
			if !assert.NoError(t, p.Start()) {
				return
			}
			assert.NoError(t, p.Join(t.Context()))
			r, _ := p.Result()
			assert.Equal(t, i*i, r)
		})
	}
	wg.Wait()
}

func TestProcessTree(t *testing.T) {
	p := mp.NewProcess(middle, 5)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
	r, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, 26, r)
}

func TestProcessNoOrphans(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grandchild.pid")
	p := mp.NewProcess(holdGrandchild, path)
	require.NoError(t, p.Start())
	var grandchild int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			return false
		}
		grandchild, err = strconv.Atoi(string(b))
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	require.True(t, processExists(grandchild))

	// Kill only the middle process, not its group: the grandchild leads
	// its own group, so only the parent-death machinery can reach it.
	require.NoError(t, syscall.Kill(p.Pid(), syscall.SIGKILL))
	var ee *mp.ExitError
	require.ErrorAs(t, p.Join(t.Context()), &ee)
	assert.Equal(t, -9, ee.ExitCode)
	assert.Eventually(t, func() bool { return !processExists(grandchild) }, 2*time.Second, 5*time.Millisecond,
		"grandchild %d outlived its parent", grandchild)
}

// processExists reports whether pid names a process that has not exited;
// a zombie waiting for its reaper counts as exited.
func processExists(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func TestCurrentProcess(t *testing.T) {
	me := mp.CurrentProcess()
	assert.Equal(t, mp.ProcessInfo{Name: "MainProcess", Pid: os.Getpid(), ParentPid: os.Getppid()}, me)

	p := mp.NewProcess(whoAmI, struct{}{})
	p.Name = "worker-a"
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
	info, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, mp.ProcessInfo{Name: "worker-a", Pid: p.Pid(), ParentPid: os.Getpid(), IsChild: true}, info)

	q := mp.NewProcess(whoAmI, struct{}{})
	require.NoError(t, q.Start())
	require.NoError(t, q.Join(t.Context()))
	info, err = q.Result()
	require.NoError(t, err)
	assert.Regexp(t, `^Process-\d+$`, info.Name)
}

func TestProcessNotRegistered(t *testing.T) {
	local := func(_ context.Context, x int) (int, error) { return x, nil }
	p := mp.NewProcess(local, 1)
	err := p.Start()
	require.ErrorIs(t, err, mp.ErrNotRegistered)
	assert.Contains(t, err.Error(), "TestProcessNotRegistered.func1")
	assert.Contains(t, err.Error(), "func init() { mp.Register(")
	assert.Zero(t, p.Pid(), "nothing started")
}

func TestProcessUnencodableArgument(t *testing.T) {
	p := mp.NewProcess(sendChan, make(chan int))
	err := p.Start()
	require.ErrorContains(t, err, "cannot encode")
	assert.Zero(t, p.Pid())
}

func sendChan(_ context.Context, _ chan int) (int, error) { return 0, nil }

func init() { mp.Register(sendChan) }

func TestProcessRegisteredOnlyInParent(t *testing.T) {
	restore := mp.AllowRegisterForTest()
	defer restore()
	late := mp.Register(func(_ context.Context, x int) (int, error) { return x, nil })
	err := run(t, late, 1)
	require.ErrorIs(t, err, mp.ErrNotRegistered)
	assert.Contains(t, err.Error(), "not registered in child process")
}

func TestProcessMalformedFrameDropsChild(t *testing.T) {
	for _, kind := range []string{"garbage", "oversized"} {
		t.Run(kind, func(t *testing.T) {
			p := mp.NewProcess(mp.BadFrame, kind)
			require.NoError(t, p.Start())
			err := p.Join(t.Context())
			require.ErrorContains(t, err, "frame and was killed")
			assert.ErrorContains(t, err, strconv.Itoa(p.Pid()))
			code, _ := p.ExitCode()
			assert.Equal(t, -9, code)
		})
	}
	// The parent is unharmed and starts the next child as usual.
	require.NoError(t, run(t, square, 3))
}

// TestProcessChildServesLazily checks how a Process child uses its
// connection: on Linux, where the parent-death signal ends a child whose
// parent died, a task that uses no queue runs without a reader goroutine;
// elsewhere the reader watches the connection from the start. A task that
// uses a queue gets the reader, and its queue works.
func TestProcessChildServesLazily(t *testing.T) {
	// A child that began as a spare serves at once: its connection is
	// its lifeline (see SetSpares).
	defer mp.SetSpares(mp.SetSpares(0))
	n, err := result(t, goroutines, struct{}{})
	require.NoError(t, err)
	if runtime.GOOS == "linux" {
		assert.Equal(t, 1, n, "only the task's goroutine")
	} else {
		assert.Equal(t, 2, n, "the task's goroutine and the reader")
	}

	q := mp.NewQueue[int](0)
	defer q.Close()
	n, err = result(t, goroutinesAfterPut, q)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 2, "the reader serves the queue")
	v, err := q.Get(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, v)
}

// TestStackStartRunsFirst checks the assumption internal/stackstart rests
// on: that package initialisation runs it before the initialisers that
// grow the main goroutine's stack.
func TestStackStartRunsFirst(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// GORACE spares it the race runtime's pause at exit under -race.
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	order := map[string]int{}
	for i, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "init" {
			order[f[1]] = i + 1
		}
	}
	first := order["github.com/mpgo/mp/internal/stackstart"]
	require.NotZero(t, first, "stackstart's init ran:\n%s", out)
	for _, later := range []string{"internal/godebug", "encoding/gob"} {
		require.NotZero(t, order[later], later)
		assert.Less(t, first, order[later], "stackstart before %s", later)
	}
}

func TestForgotMainGuard(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "forgotmain")
	build := exec.Command("go", "build", "-o", bin, "./testdata/forgotmain")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	cmd := exec.Command(bin)
	out, err = cmd.CombinedOutput()
	require.Error(t, err, "the program reports the failed Start")
	text := string(out)
	assert.Contains(t, text, "before its handshake")
	assert.Contains(t, text, "call mp.Main() first in main", "the parent names mp.Main")
	assert.Contains(t, text, "main did not call mp.Main()", "the child refused to start children of its own")
	assert.Equal(t, 1, strings.Count(text, "before its handshake"), "no fork bomb: one generation only")
}

func TestProcessHandshakeTimeout(t *testing.T) {
	defer mp.SetHelloTimeout(200 * time.Millisecond)()
	p := mp.NewProcess(square, 2)
	p.Env = []string{"MP_TEST_STALL=1"}
	err := p.Start()
	require.ErrorContains(t, err, "did not answer within 200ms and was killed")
	assert.ErrorContains(t, err, "call mp.Main() first in main")
	assert.Zero(t, p.Pid(), "not started")
	require.Error(t, p.Join(t.Context()))
}

func TestProcessArgumentTooLarge(t *testing.T) {
	p := mp.NewProcess(echoBytes, make([]byte, 65<<20))
	require.ErrorContains(t, p.Start(), "exceeds the")
	assert.Zero(t, p.Pid())
}
