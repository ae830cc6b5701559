package main

import (
	"testing"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { mp.Main(); goleak.VerifyTestMain(m) }

// TestDemo runs the demo as README shows it: an embedded server, two
// worker processes and a submitter.
func TestDemo(t *testing.T) {
	require.NoError(t, run(t.Context(), "", false, 2, 100))
}

func TestWorkerNeedsURL(t *testing.T) {
	require.ErrorContains(t, run(t.Context(), "", true, 0, 0), "-worker needs -url")
}
