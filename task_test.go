package mp_test

import (
	"errors"
	"io"
	"testing"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPanicErrorUnwrap(t *testing.T) {
	pe := &mp.PanicError{Value: io.EOF, Stack: []byte("stack")}
	require.ErrorIs(t, pe, io.EOF)
	assert.Contains(t, pe.Error(), "EOF")
	assert.Contains(t, pe.Error(), "stack")
	assert.NoError(t, (&mp.PanicError{Value: "boom"}).Unwrap())
}

func TestExitErrorMessage(t *testing.T) {
	assert.Equal(t, "mp: process 42 exited with status 3 before replying", (&mp.ExitError{Pid: 42, ExitCode: 3}).Error())
	assert.Contains(t, (&mp.ExitError{Pid: 42, ExitCode: -9}).Error(), "killed by signal 9")
	assert.Contains(t, (&mp.ExitError{Pid: 1, ExitCode: 1, Stderr: []byte("oops")}).Error(), "oops")
}

func TestSentinelsDistinct(t *testing.T) {
	all := []error{mp.ErrClosed, mp.ErrFull, mp.ErrEmpty, mp.ErrTerminated, mp.ErrNotRegistered, mp.ErrLost}
	for i, a := range all {
		assert.Regexp(t, "^mp: ", a.Error())
		for j, b := range all {
			assert.Equal(t, i == j, errors.Is(a, b))
		}
	}
}
