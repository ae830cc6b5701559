package mp

import (
	"context"
	"fmt"

	"github.com/mpgo/mp/internal/wire"
)

// SharedRequestArgs is the argument of SharedRequest.
type SharedRequestArgs struct {
	L *Lock
	// Malformed sends a request whose header stops after the operation.
	Malformed bool
}

// SharedRequest is a task that, in the child, sends the owner of a.L a
// request that an honest proxy never sends: an Unlock of the lock as a
// request although the child does not hold it, or a malformed request.
// It returns the owner's answer.
var SharedRequest = Register(func(ctx context.Context, a SharedRequestArgs) (string, error) {
	hdr := sheader(sopUnlock, a.L.r.id, 0)
	if a.Malformed {
		hdr = []byte{sopUnlock}
	}
	_, err := a.L.r.cn.Call(ctx, serviceShared, wire.Message{Header: hdr})
	if err == nil {
		return "", fmt.Errorf("the owner accepted the request")
	}
	return err.Error(), nil
})

// CondWaiters returns the number of callers waiting on c.
func CondWaiters(c *Cond) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}
