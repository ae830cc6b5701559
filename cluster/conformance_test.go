package cluster_test

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/backend/backendtest"
	"github.com/mpgo/mp/cluster"
)

func TestConformance(t *testing.T) {
	srv := server(t)
	var n atomic.Int64
	backendtest.TestPool(t, func(t *testing.T, workers int) *mp.Pool {
		name := "conform" + strconv.FormatInt(n.Add(1), 10)
		serve(t, srv, name, cluster.Slots(4))
		p, err := cluster.NewPool(t.Context(), connect(t, srv), name, cluster.Window(workers))
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
