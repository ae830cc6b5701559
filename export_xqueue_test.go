package mp

import (
	"context"
	"encoding/binary"
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
	if _, err := parentConn.nc.Write(b); err != nil {
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
