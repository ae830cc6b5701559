package mp_test

import (
	"testing"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/backend/backendtest"
)

// The pool semantics of the contract are stated once, in backendtest, and
// hold on every back-end: each adds its line here (the process pool's is
// in conformance_unix_test.go, where its workers can start).

func TestConformanceGoroutinePool(t *testing.T) {
	backendtest.TestPool(t, func(_ *testing.T, workers int) *mp.Pool { return mp.NewPool(workers) })
}
