package mp_test

import (
	"testing"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/backend/backendtest"
)

// The pool semantics of the contract, stated once in backendtest, hold on
// both back-ends; a new back-end adds its own line here.

func TestConformanceGoroutinePool(t *testing.T) {
	backendtest.TestPool(t, func(_ *testing.T, workers int) *mp.Pool { return mp.NewPool(workers) })
}

func TestConformanceProcessPool(t *testing.T) {
	backendtest.TestPool(t, func(_ *testing.T, workers int) *mp.Pool { return mp.NewProcessPool(workers) })
}
