package mp_test

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quotaError is a gob-registered error type: errors.As finds it in the
// parent.
type quotaError struct{ Limit int }

func (e quotaError) Error() string { return fmt.Sprintf("quota %d exceeded", e.Limit) }

func init() { gob.Register(quotaError{}) }

func lateCube(_ context.Context, x int) (int, error) { return x * x * x, nil }

func TestRegisterPanics(t *testing.T) {
	assert.PanicsWithValue(t, "mp: Register called after mp.Main; register tasks at package level (in init or a package-level variable)",
		func() { mp.Register(lateCube) }, "after Main")

	restore := mp.AllowRegisterForTest()
	defer restore()
	assert.Equal(t, fmt.Sprintf("%p", lateCube), fmt.Sprintf("%p", mp.Register(lateCube)), "Register returns f")
	assert.PanicsWithValue(t, "mp: duplicate Register of github.com/mpgo/mp_test.lateCube", func() { mp.Register(lateCube) })
	assert.PanicsWithValue(t, "mp: Register of a nil function", func() { mp.Register[int, int](nil) })

	add1 := mp.Register(makeAdder(1))
	assert.PanicsWithValue(t,
		"mp: Register of a second closure of github.com/mpgo/mp_test.makeAdder.func1: closures made by the same function literal cannot be told apart in a child process; register one closure, or use package-level functions",
		func() { mp.Register(makeAdder(2)) })

	// A sibling of the registered closure is refused before anything starts.
	err := mp.NewProcess(makeAdder(3), 1).Start()
	require.ErrorIs(t, err, mp.ErrNotRegistered)
	assert.Contains(t, err.Error(), "different closure")
	r, err := add1(t.Context(), 1)
	require.NoError(t, err)
	assert.Equal(t, 2, r, "Register returns the closure itself")
}

// makeAdder is not inlined so that every closure it returns shares one
// function literal's code, the case Register cannot tell apart.
//
//go:noinline
func makeAdder(n int) mp.Func[int, int] {
	return func(_ context.Context, x int) (int, error) { return x + n, nil }
}

func TestNotRegisteredNamesFunction(t *testing.T) {
	err := mp.NewProcess(unregisteredTask, 1).Start()
	require.ErrorIs(t, err, mp.ErrNotRegistered)
	assert.Equal(t, "mp: function not registered: github.com/mpgo/mp_test.unregisteredTask cannot run in a child process until it is registered at package level: func init() { mp.Register(unregisteredTask) }", err.Error())

	err = mp.NewProcess[int, int](nil, 1).Start()
	require.ErrorIs(t, err, mp.ErrNotRegistered)
}

func unregisteredTask(_ context.Context, x int) (int, error) { return x, nil }

type point struct{ X, Y int }

type celsius float64

type token string

func TestCodecRoundTrip(t *testing.T) {
	t.Run("struct{}", func(t *testing.T) {
		v, wire, err := mp.RoundTrip(struct{}{})
		require.NoError(t, err)
		assert.Equal(t, struct{}{}, v)
		assert.Empty(t, wire, "zero-size values send nothing")
	})
	t.Run("[]byte travels raw", func(t *testing.T) {
		in := []byte("payload")
		v, wire, err := mp.RoundTrip(in)
		require.NoError(t, err)
		assert.Equal(t, in, v)
		assert.Same(t, &in[0], &wire[0], "no copy on the way out")
	})
	t.Run("empty []byte", func(t *testing.T) {
		v, _, err := mp.RoundTrip([]byte{})
		require.NoError(t, err)
		assert.Empty(t, v)
	})
	t.Run("scalars", func(t *testing.T) {
		i, _, err := mp.RoundTrip(-1234567)
		require.NoError(t, err)
		assert.Equal(t, -1234567, i)
		u, _, err := mp.RoundTrip(uint8(200))
		require.NoError(t, err)
		assert.Equal(t, uint8(200), u)
		f, _, err := mp.RoundTrip(celsius(36.6))
		require.NoError(t, err)
		assert.Equal(t, celsius(36.6), f)
		s, _, err := mp.RoundTrip(token("héllo"))
		require.NoError(t, err)
		assert.Equal(t, token("héllo"), s)
		b, _, err := mp.RoundTrip(true)
		require.NoError(t, err)
		assert.True(t, b)
	})
	t.Run("gob", func(t *testing.T) {
		v, _, err := mp.RoundTrip(map[string]point{"a": {1, 2}})
		require.NoError(t, err)
		assert.Equal(t, map[string]point{"a": {1, 2}}, v)
		p, _, err := mp.RoundTrip(&point{3, 4})
		require.NoError(t, err)
		assert.Equal(t, &point{3, 4}, p)
	})
	t.Run("interface", func(t *testing.T) {
		v, _, err := mp.RoundTrip[any](42)
		require.NoError(t, err)
		assert.Equal(t, 42, v)
		_, _, err = mp.RoundTrip[any](point{})
		require.ErrorContains(t, err, "cannot encode interface", "unregistered concrete type")
	})
	t.Run("unencodable", func(t *testing.T) {
		_, _, err := mp.RoundTrip(func() {})
		require.ErrorContains(t, err, "mp: cannot encode func()")
	})
}

func TestCrossError(t *testing.T) {
	t.Run("plain keeps the message", func(t *testing.T) {
		err := mp.CrossError(errors.New("disk on fire"))
		assert.EqualError(t, err, "disk on fire")
	})
	t.Run("gob-registered type", func(t *testing.T) {
		err := mp.CrossError(quotaError{Limit: 3})
		assert.Equal(t, quotaError{Limit: 3}, err)
	})
	t.Run("wrapped registered type and sentinel", func(t *testing.T) {
		err := mp.CrossError(fmt.Errorf("outer: %w", errors.Join(quotaError{Limit: 5}, io.EOF)))
		assert.Contains(t, err.Error(), "outer: quota 5 exceeded")
		require.ErrorIs(t, err, io.EOF)
		var qe quotaError
		assert.ErrorAs(t, err, &qe)
	})
	t.Run("context errors keep their identity", func(t *testing.T) {
		assert.Equal(t, context.Canceled, mp.CrossError(context.Canceled))
		assert.ErrorIs(t, mp.CrossError(fmt.Errorf("op: %w", context.DeadlineExceeded)), context.DeadlineExceeded)
	})
	t.Run("panic", func(t *testing.T) {
		err := mp.CrossError(&mp.PanicError{Value: 42, Stack: []byte("goroutine 1")})
		var pe *mp.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "42", pe.Value)
		assert.Equal(t, "goroutine 1", string(pe.Stack))
	})
}
