//go:build unix

package mp_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// touchy is a value whose own marshalling methods panic in one place: in
// the process Where names ("parent" or "child"), during Op ("encode" or
// "decode"). It stands for user code that mp runs on its own goroutines.
type touchy struct {
	N         int
	Where, Op string
}

// here names the calling process as touchy's Where does.
func here() string {
	if mp.CurrentProcess().IsChild {
		return "child"
	}
	return "parent"
}

func (t touchy) GobEncode() ([]byte, error) {
	if t.Op == "encode" && t.Where == here() {
		panic("touchy: encode in the " + t.Where)
	}
	return []byte(strconv.Itoa(t.N) + "|" + t.Where + "|" + t.Op), nil
}

func (t *touchy) GobDecode(b []byte) error {
	f := strings.Split(string(b), "|")
	if len(f) != 3 {
		return errors.New("touchy: bad encoding")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return err
	}
	*t = touchy{N: n, Where: f[1], Op: f[2]}
	if t.Op == "decode" && t.Where == here() {
		panic("touchy: decode in the " + t.Where)
	}
	return nil
}

// echoTouchy returns its argument, so that a touchy crosses both ways.
func echoTouchy(_ context.Context, t touchy) (touchy, error) { return t, nil }

// exitMidTask ends the child with os.Exit(code) while its task runs.
func exitMidTask(_ context.Context, code int) (int, error) {
	os.Exit(code)
	return 0, nil
}

func init() {
	mp.Register(echoTouchy)
	mp.Register(exitMidTask)
}

// hookCases are the four places where a touchy's methods run, with the
// words the error must contain.
var hookCases = []struct {
	name string
	arg  touchy
	want []string
}{
	{"argument encode in the parent", touchy{N: 1, Where: "parent", Op: "encode"}, []string{"encoding the argument", "touchy: encode in the parent"}},
	{"argument decode in the child", touchy{N: 2, Where: "child", Op: "decode"}, []string{"decoding the argument", "touchy: decode in the child"}},
	{"result encode in the child", touchy{N: 3, Where: "child", Op: "encode"}, []string{"encoding the result", "touchy: encode in the child"}},
	{"result decode in the parent", touchy{N: 4, Where: "parent", Op: "decode"}, []string{"decoding the result", "touchy: decode in the parent"}},
}

// requireHookPanic checks that err is the *PanicError of a marshalling
// method, saying where it happened, with the stack of the panic.
func requireHookPanic(t *testing.T, err error, want []string) {
	t.Helper()
	var pe *mp.PanicError
	require.ErrorAs(t, err, &pe)
	for _, w := range want {
		assert.ErrorContains(t, err, w)
	}
	assert.Contains(t, string(pe.Stack), "touchy", "the stack is that of the panic")
}

func TestProcessMarshallingPanics(t *testing.T) {
	for _, tc := range hookCases {
		t.Run(tc.name, func(t *testing.T) {
			p := mp.NewProcess(echoTouchy, tc.arg)
			err := p.Start()
			if err == nil {
				err = p.Join(t.Context())
			}
			requireHookPanic(t, err, tc.want)
		})
	}
	// The parent is unharmed and runs the next child as usual.
	got, err := result(t, echoTouchy, touchy{N: 5})
	require.NoError(t, err)
	assert.Equal(t, 5, got.N)
}

func TestProcessPoolMarshallingPanics(t *testing.T) {
	p := newProcessPool(t, 1)
	pid := func() int {
		pid, err := mp.Apply(t.Context(), p, pidOf, 0)
		require.NoError(t, err)
		return pid
	}
	before := pid()
	for _, tc := range hookCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mp.Apply(t.Context(), p, echoTouchy, tc.arg)
			requireHookPanic(t, err, tc.want)
			// The panic cost one task, not the worker.
			assert.Equal(t, before, pid(), "the worker is kept")
		})
		t.Run(tc.name+" in Map", func(t *testing.T) {
			args := []touchy{{N: 10}, tc.arg, {N: 11}}
			_, err := mp.Map(t.Context(), p, echoTouchy, args, mp.ChunkSize(3))
			requireHookPanic(t, err, tc.want)
			assert.Equal(t, before, pid(), "the worker is kept")
		})
		t.Run(tc.name+" in MapSeq", func(t *testing.T) {
			args := []touchy{{N: 10}, tc.arg, {N: 11}}
			var got []int
			var errs []error
			for v, err := range mp.MapSeq(t.Context(), p, echoTouchy, func(yield func(touchy) bool) {
				for _, a := range args {
					if !yield(a) {
						return
					}
				}
			}) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				got = append(got, v.N)
			}
			require.Len(t, errs, 1)
			requireHookPanic(t, errs[0], tc.want)
			assert.Equal(t, []int{10, 11}, got, "the other items go on")
		})
	}
	got, err := mp.Apply(t.Context(), p, echoTouchy, touchy{N: 5})
	require.NoError(t, err)
	assert.Equal(t, 5, got.N)
	joinClean(t, p)
}

// requireExitedZero checks that err reports a child that exited with
// status 0 in the middle of its task, in those words.
func requireExitedZero(t *testing.T, err error, pid int) {
	t.Helper()
	var ee *mp.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 0, ee.ExitCode)
	assert.Equal(t, pid, ee.Pid)
	assert.ErrorContains(t, err, "process "+strconv.Itoa(pid)+" exited with status 0 before replying")
	assert.NotContains(t, err.Error(), "protocol")
}

func TestProcessExitZeroMidTask(t *testing.T) {
	p := mp.NewProcess(exitMidTask, 0)
	require.NoError(t, p.Start())
	requireExitedZero(t, p.Join(t.Context()), p.Pid())
	code, ok := p.ExitCode()
	assert.True(t, ok)
	assert.Equal(t, 0, code)
}

func TestProcessPoolExitZeroMidTask(t *testing.T) {
	p := newProcessPool(t, 1)
	pid, err := mp.Apply(t.Context(), p, pidOf, 0)
	require.NoError(t, err)
	_, err = mp.Apply(t.Context(), p, exitMidTask, 0)
	requireExitedZero(t, err, pid)
	_, err = mp.Map(t.Context(), p, exitMidTask, []int{0, 0})
	var ee *mp.ExitError
	require.ErrorAs(t, err, &ee)
	assert.ErrorContains(t, err, "exited with status 0 before replying")
	// The worker was replaced and the pool goes on.
	n, err := mp.Apply(t.Context(), p, square, 3)
	require.NoError(t, err)
	assert.Equal(t, 9, n)
	joinClean(t, p)
}
