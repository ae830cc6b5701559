//go:build unix

package mp

import (
	"testing"

	"github.com/mpgo/mp/internal/wire"

	"github.com/stretchr/testify/require"
)

// TestProxyAllYieldsLostConnection ranges with All over a child's queue
// whose connection to the owner is lost: the loop sees the connection's
// error as its last pair, rather than ending as if the queue were closed.
func TestProxyAllYieldsLostConnection(t *testing.T) {
	owner, child := connPair(t, func(owner, _ *wire.Conn) {
		owner.Handle(serviceQueue, func(*wire.Request) {}) // takes the credit, sends nothing
	})
	q := new(Queue[int])
	var impl queueImpl[int] = &xproxy[int]{id: 1, cn: child, codec: codecFor[int]().as(roleItem),
		window: 1, avail: make(chan struct{})}
	q.remote.Store(&impl)
	owner.Close()
	var errs []error
	for v, err := range q.All(t.Context()) {
		require.Error(t, err, "got %d from nowhere", v)
		errs = append(errs, err)
	}
	require.Len(t, errs, 1, "one error, and All ends after it")
	require.ErrorIs(t, errs[0], wire.ErrConnLost)
}
