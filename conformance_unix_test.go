//go:build unix

package mp_test

import (
	"testing"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/backend/backendtest"
)

func TestConformanceProcessPool(t *testing.T) {
	backendtest.TestPool(t, func(_ *testing.T, workers int) *mp.Pool { return mp.NewProcessPool(workers) })
}
