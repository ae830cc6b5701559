package mp

import (
	"context"
	"encoding/binary"
	"strconv"
	"time"
)

// BadConsumer is a task that, in the child, takes one item from q and then
// writes a frame the parent must reject, and waits to be dropped: the
// test hook for a consumer that breaks the protocol while holding an item.
var BadConsumer = Register(func(ctx context.Context, q *JoinableQueue[int]) (struct{}, error) {
	if _, err := q.Get(ctx); err != nil {
		return struct{}{}, err
	}
	b := binary.BigEndian.AppendUint32(nil, 13)
	b = append(b, 200, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0)
	if _, err := parentConn.Stream.Write(b); err != nil {
		return struct{}{}, err
	}
	<-ctx.Done()
	return struct{}{}, nil
})

// ParseQueueItems parses an items message from a parent as a child's
// proxy does, for the fuzz test: header is the part after the operation
// and queue number.
func ParseQueueItems(header, raw []byte) (int, error) {
	p := &xproxy[int]{avail: make(chan struct{}), window: 1}
	if err := p.deliver(xopItems, &hdrReader{b: header}, raw); err != nil {
		return 0, err
	}
	return p.buffered(), nil
}

// HoldTwoArgs is the argument of HoldTwo.
type HoldTwoArgs struct {
	Q    *JoinableQueue[int]
	Out  *Queue[string]
	Done bool // mark the item it got done
}

// HoldTwo is a task that, in the child, gets one item of Q while a second
// is prefetched, marks the first done if Done is set, reports the item on
// Out and waits to be killed: when it dies, the owner holds for it the
// prefetched item and, unless it was marked done, the one it got. It asks
// for two items ahead and waits for the second to arrive before it calls
// TaskDone, so that its buffer is never empty when TaskDone runs.
var HoldTwo = Register(func(ctx context.Context, a HoldTwoArgs) (struct{}, error) {
	p := (*a.Q.remote.Load()).(*xproxy[int])
	p.mu.Lock()
	p.window = 2
	p.mu.Unlock()
	v, err := a.Q.Get(ctx)
	if err != nil {
		return struct{}{}, err
	}
	for {
		p.mu.Lock()
		n := p.buffered()
		p.mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return struct{}{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	if a.Done {
		a.Q.TaskDone()
	}
	if err := a.Out.Put(ctx, strconv.Itoa(v)); err != nil {
		return struct{}{}, err
	}
	<-ctx.Done()
	return struct{}{}, nil
})

// PulledItems returns how many queue items this process has pulled from
// its parent's memory rather than read from the socket.
func PulledItems() int64 { return pulled.Load() }

// DeliverItemsAt hands a child's proxy, which can pull (or not), an
// xopItemsAt message as the parent would send it, for an item of n bytes
// at addr in the parent's memory; it returns the proxy's verdict.
func DeliverItemsAt(canPull bool, n int, addr uint64) error {
	p := &xproxy[[]byte]{avail: make(chan struct{}), window: 1, pull: canPull}
	return p.deliver(xopItemsAt, &hdrReader{b: xheader(xopItemsAt, 0, uint64(n), addr)[2:]}, nil)
}
