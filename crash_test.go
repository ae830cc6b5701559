//go:build unix

package mp_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The crash matrix: every way a task can go wrong, at every step where
// user code runs on the way from the caller to its result and back. Each
// cell must end with the right typed error within a few seconds, and the
// back-end must go on serving. Faults that end the process they happen in
// (os.Exit, SIGKILL, a segmentation fault) are tried only where that
// process is the child: in the parent they would end the test itself, as
// they end any Go program.

// Fault kinds.
const (
	faultError    = "error"
	faultPanic    = "panic"
	faultExit     = "exit"    // os.Exit(99)
	faultKill     = "sigkill" // SIGKILL, as if sent from outside
	faultSegfault = "segv"    // a write to an unmapped address
)

// Steps, with the process each runs in.
const (
	stepArgEncode = "argument encode" // parent
	stepArgDecode = "argument decode" // child
	stepRun       = "run"             // child
	stepResEncode = "result encode"   // child
	stepResDecode = "result decode"   // parent
)

var stepInParent = map[string]bool{stepArgEncode: true, stepResDecode: true}

// crashArg carries its fault and the step to fault in; its marshalling
// methods fault when the step is theirs and they run in the right process.
type crashArg struct {
	N           int
	Fault, Step string
}

func (c crashArg) faultAt(step string) error {
	if c.Step != step || stepInParent[step] == mp.CurrentProcess().IsChild {
		return nil
	}
	msg := "crash: " + c.Fault + " at " + step
	switch c.Fault {
	case faultError:
		return errors.New(msg)
	case faultPanic:
		panic(msg)
	case faultExit:
		os.Exit(99)
	case faultKill:
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	case faultSegfault:
		// A write to a page mapped with no access: a fault at an address
		// that is not nil, which the runtime cannot turn into a panic, so
		// the process dies of it.
		page, err := syscall.Mmap(-1, 0, os.Getpagesize(), syscall.PROT_NONE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return err
		}
		page[0] = 1
	}
	return nil
}

func (c crashArg) GobEncode() ([]byte, error) {
	step := stepArgEncode
	if mp.CurrentProcess().IsChild {
		step = stepResEncode
	}
	if err := c.faultAt(step); err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "%d|%s|%s", c.N, c.Fault, c.Step), nil
}

func (c *crashArg) GobDecode(b []byte) error {
	f := strings.Split(string(b), "|")
	if len(f) != 3 {
		return errors.New("crash: bad encoding")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return err
	}
	*c = crashArg{N: n, Fault: f[1], Step: f[2]}
	step := stepResDecode
	if mp.CurrentProcess().IsChild {
		step = stepArgDecode
	}
	return c.faultAt(step)
}

// crashTask returns its argument, faulting first if its step is run.
func crashTask(_ context.Context, c crashArg) (crashArg, error) {
	if err := c.faultAt(stepRun); err != nil {
		return crashArg{}, err
	}
	return c, nil
}

func init() { mp.Register(crashTask) }

type crashCell struct {
	fault, step string
}

func crashCells() []crashCell {
	var cells []crashCell
	for _, step := range []string{stepArgEncode, stepArgDecode, stepRun, stepResEncode, stepResDecode} {
		for _, fault := range []string{faultError, faultPanic, faultExit, faultKill, faultSegfault} {
			if stepInParent[step] && fault != faultError && fault != faultPanic {
				continue
			}
			cells = append(cells, crashCell{fault, step})
		}
	}
	return cells
}

// requireCrash checks that err is what cell must give.
func requireCrash(t *testing.T, c crashCell, err error) {
	t.Helper()
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "the cell ended in time")
	msg := "crash: " + c.fault + " at " + c.step
	var pe *mp.PanicError
	var ee *mp.ExitError
	switch c.fault {
	case faultError:
		assert.ErrorContains(t, err, msg)
		assert.False(t, errors.As(err, &pe), "an error is not a panic: %v", err)
		assert.False(t, errors.As(err, &ee), "an error is not an exit: %v", err)
	case faultPanic:
		require.ErrorAs(t, err, &pe)
		assert.ErrorContains(t, err, msg)
		assert.NotEmpty(t, pe.Stack)
	case faultExit:
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 99, ee.ExitCode)
		assert.ErrorContains(t, err, "exited with status 99")
	case faultKill:
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, -int(syscall.SIGKILL), ee.ExitCode)
		assert.ErrorContains(t, err, "killed by signal 9")
	case faultSegfault:
		// The Go runtime reports the fault and exits with status 2.
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 2, ee.ExitCode)
	}
}

func TestCrashMatrixProcess(t *testing.T) {
	for _, c := range crashCells() {
		t.Run(c.step+"/"+c.fault, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			p := mp.NewProcess(crashTask, crashArg{N: 1, Fault: c.fault, Step: c.step})
			// The runtime's report of a segmentation fault is not
			// this test's output.
			p.Stderr = &strings.Builder{}
			err := p.Start()
			if err == nil {
				err = p.Join(ctx)
				if err == nil {
					_, err = p.Result()
				}
			}
			requireCrash(t, c, err)
		})
	}
	got, err := result(t, crashTask, crashArg{N: 7})
	require.NoError(t, err)
	assert.Equal(t, 7, got.N, "the parent goes on")
}

func TestCrashMatrixProcessPool(t *testing.T) {
	p := newProcessPool(t, 2)
	for _, c := range crashCells() {
		t.Run(c.step+"/"+c.fault, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			_, err := mp.Apply(ctx, p, crashTask, crashArg{N: 1, Fault: c.fault, Step: c.step})
			requireCrash(t, c, err)
			// The pool goes on serving, with a replaced worker if one died.
			got, err := mp.Apply(ctx, p, crashTask, crashArg{N: 2})
			require.NoError(t, err)
			assert.Equal(t, 2, got.N)
		})
	}
	joinClean(t, p)
}
