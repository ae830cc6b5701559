package mp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/mpgo/mp/internal/wire"
)

// xowner is an xstate of any item type, as the broker sees it.
type xowner interface {
	newHolder(b *broker) xholder
}

// xholder is the state of one queue on one child connection.
type xholder interface {
	handle(req *wire.Request, op byte, h *hdrReader)
	release()
}

// broker serves the queue requests of one child: one holder per queue the
// child uses. It lives as long as the child's connection. It knows the
// child only by its connection, its pid (for errors) and kill, which drops
// it for breaking the protocol, as the connection drops a child that
// sends a malformed frame.
type broker struct {
	cn   *wire.Conn
	pid  int
	kill func(err error)

	mu      sync.Mutex
	holders map[uint64]xholder
	gone    bool
}

func (b *broker) serve(req *wire.Request) {
	h := hdrReader{b: req.Msg.Header}
	op := h.byte()
	id := h.uvarint()
	if h.bad {
		b.malformed(req, "queue request without an operation")
		return
	}
	b.mu.Lock()
	hd := b.holders[id]
	if hd == nil && !b.gone {
		xtable.mu.Lock()
		o := xtable.byID[id]
		xtable.mu.Unlock()
		if o != nil {
			hd = o.newHolder(b)
			b.holders[id] = hd
		}
	}
	b.mu.Unlock()
	if hd == nil {
		req.Reply(wire.Message{}, fmt.Errorf("mp: process %d has no shared queue %d", b.pid, id))
		return
	}
	hd.handle(req, op, &h)
}

// drop kills a child that sent a malformed queue message, as the
// connection does for a malformed frame: a child that breaks the protocol
// cannot be trusted with the items it holds, which come back when its
// connection ends.
func (b *broker) drop(what string) {
	b.kill(fmt.Errorf("%w: %s", wire.ErrMalformed, what))
}

// malformed drops the child and fails the request req, which it sent.
func (b *broker) malformed(req *wire.Request, what string) {
	b.drop(what)
	req.Reply(wire.Message{}, errors.New("mp: malformed queue request"))
}

// release runs once the child's connection has ended: the items the child
// held go back to their queues.
func (b *broker) release() {
	b.mu.Lock()
	b.gone = true
	hs := make([]xholder, 0, len(b.holders))
	for _, h := range b.holders {
		hs = append(hs, h)
	}
	b.mu.Unlock()
	for _, h := range hs {
		h.release()
	}
}

// holder is one queue as one child uses it: the credit the child granted,
// the items it holds, and the feeder goroutine that sends it items (see
// the protocol table in xqueue.go).
type holder[T any] struct {
	x *xstate[T]
	b *broker

	// sending is held by the feeder from before it takes an item until the
	// batch holding it has been queued on the connection, so that a
	// revoke the child waits for is answered only after every item sent
	// before it: the child hands back its unread buffer by count, and the
	// count names the newest items of held only if none is still on its
	// way.
	sending sync.Mutex

	mu       sync.Mutex
	credit   int                // items the child asked for and has not been sent
	held     []heldItem[T]      // in delivery order, which is the child's Get order
	wake     chan struct{}      // a token when credit grows while the feeder waits
	cancel   context.CancelFunc // ends the feeder's wait for an item, on revoke
	feeding  bool               // the feeder has been started
	fed      chan struct{}      // closed when the feeder ends
	released bool               // the connection has ended: start no feeder
	pull     bool               // the child can pull items (its xopAck said so)
}

// handle serves one request or notification of the child. It runs on the
// connection's reader goroutine, so what it does at once is ordered with
// the child's other frames; what may wait runs on a goroutine of its own.
func (h *holder[T]) handle(req *wire.Request, op byte, hr *hdrReader) {
	x := h.x
	switch op {
	case xopPut:
		h.put(req, hr)
	case xopTryGet:
		h.tryGet(req)
	case xopAck:
		got, done, want, returned, flags := hr.int(), hr.int(), hr.int(), hr.int(), hr.int()
		if hr.bad {
			h.b.drop("short queue acknowledgement")
			return
		}
		h.ack(got, done, want, returned, flags&ackPull != 0)
	case xopRevoke:
		h.revoke(req)
	case xopLen:
		req.Reply(wire.Message{Header: binary.AppendUvarint(nil, uint64(x.len()))}, nil)
	case xopClose:
		x.close(hr.byte() == 1)
		req.Reply(wire.Message{}, nil)
	case xopJoin:
		req.Conn.Go(func() { req.Reply(wire.Message{}, x.join(req.Ctx)) })
	default:
		h.b.malformed(req, fmt.Sprintf("unknown queue operation %d", op))
	}
}

// put serves a child's Put. A Put that cannot wait (unbounded queue, or
// TryPut) is served on the reader goroutine, so that the item is in the
// queue before any later frame of the child is read: a child's Puts and
// its later TaskDone or Join then reach the owner in the child's order.
func (h *holder[T]) put(req *wire.Request, hr *hdrReader) {
	x := h.x
	flags := hr.byte()
	if hr.bad {
		h.b.malformed(req, "short queue put")
		return
	}
	block := flags&putBlock != 0
	// A panic in the item's GobDecode comes back from decodeOn as a
	// *PanicError: it fails this Put, not the process.
	v, err := x.codec.decodeOn(req.Conn, req.Msg.Raw)
	if err == nil && (!block || x.q.maxsize <= 0) {
		err = x.q.put(context.Background(), v, false)
	} else if err == nil {
		req.Conn.Go(func() { req.Reply(wire.Message{}, x.q.put(req.Ctx, v, true)) })
		return
	}
	if err != nil && flags&putStreamed != 0 {
		// The child's Put has returned nil already: count the item, so
		// that Join reports it, and answer, so that the child's next Put
		// or Join does.
		x.refuse(h.b.pid, err)
	}
	req.Reply(wire.Message{}, err)
}

// tryGet serves a child's TryGet that found nothing prefetched: the item
// goes in the reply, outside the credit, and a JoinableQueue's item is
// held like a fed one until the child marks it done.
func (h *holder[T]) tryGet(req *wire.Request) {
	x := h.x
	v, n, err := x.take(context.Background(), false)
	if err != nil {
		req.Reply(wire.Message{}, err)
		return
	}
	b, err := x.codec.encodeOn(req.Conn, v)
	if err != nil {
		x.finish(1)
		req.Reply(wire.Message{}, err)
		return
	}
	if x.joinable {
		h.mu.Lock()
		h.held = append(h.held, heldItem[T]{v, n + 1})
		h.mu.Unlock()
	}
	req.Reply(wire.Message{Raw: b}, nil)
}

// revoke takes back the child's credit: its Get gave up, or its task
// ended. A feeder waiting for an item stops waiting. When the child asks
// for an answer (before it hands back its buffer), the answer waits for
// the batch the feeder may be sending, so that it follows every item sent
// before the revoke.
func (h *holder[T]) revoke(req *wire.Request) {
	h.mu.Lock()
	h.credit = 0
	if h.cancel != nil {
		h.cancel()
	}
	h.mu.Unlock()
	if !req.IsNotification() {
		req.Conn.Go(func() {
			h.sending.Lock()
			defer h.sending.Unlock()
			req.Reply(wire.Message{}, nil)
		})
	}
}

// ack applies a child's report: got items retire those of a Queue, done
// ones those of a JoinableQueue, want adds credit, and returned items (the
// child's unread buffer, at the end of held) go back to the queue; pull
// says whether the child can pull items.
func (h *holder[T]) ack(got, done, want, returned int, pull bool) {
	h.mu.Lock()
	h.pull = pull
	retire := got
	if h.x.joinable {
		retire = done
	}
	var back []heldItem[T]
	if returned > 0 {
		returned = min(returned, len(h.held))
		back = append(back, h.held[len(h.held)-returned:]...)
		clear(h.held[len(h.held)-returned:])
		h.held = h.held[:len(h.held)-returned]
	}
	retire = min(retire, len(h.held))
	clear(h.held[:retire])
	h.held = h.held[retire:]
	h.credit += want
	start := want > 0 && !h.feeding && !h.released
	if start {
		h.feeding = true
		h.fed = make(chan struct{})
	}
	h.mu.Unlock()
	if h.x.joinable && done > 0 {
		h.x.q.taskDoneN(done)
	}
	h.x.requeue(back, h.b.pid, false)
	if start {
		h.b.cn.Go(h.feed)
	} else if want > 0 {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// feed sends items to the child while it has credit, in batches of what
// the queue holds at the time. It ends when the connection does.
func (h *holder[T]) feed() {
	defer close(h.fed)
	cn := h.b.cn
	var f itemFrame
	for {
		ctx, ok := h.awaitCredit()
		if !ok {
			return
		}
		first, err := h.takeFirst(ctx)
		if err != nil {
			h.sending.Unlock()
			if cn.Ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrClosed) && !h.tellClosed() {
				return
			}
			continue // revoked, or closed and told: wait for credit again
		}
		batch := h.fill(first, &f)
		if len(batch) == 0 {
			h.sending.Unlock()
			continue
		}
		if h.send(batch, &f) != nil {
			return
		}
		f.trim()
	}
}

// awaitCredit waits until the child has credit, and returns the context
// of the wait for an item that follows, which a revoke cancels. The credit
// check and the registration of the cancel are one step under h.mu, so a
// revoke either comes first (no credit: wait on) or ends that wait; no
// item is sent against credit the child took back. It returns false once
// the connection has ended.
func (h *holder[T]) awaitCredit() (context.Context, bool) {
	done := h.b.cn.Ctx.Done()
	h.mu.Lock()
	for h.credit <= 0 {
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-done:
			return nil, false
		}
		h.mu.Lock()
	}
	ctx, cancel := context.WithCancel(h.b.cn.Ctx)
	h.cancel = cancel
	h.mu.Unlock()
	return ctx, true
}

// takeFirst waits for the first item of a batch. It locks h.sending, which
// the caller unlocks once the batch is queued on the connection, or at
// once if takeFirst fails: ctx was cancelled (revoke, or the connection
// ended) or the queue is closed and drained.
func (h *holder[T]) takeFirst(ctx context.Context) (heldItem[T], error) {
	h.sending.Lock()
	v, n, err := h.x.take(ctx, true)
	h.mu.Lock()
	cancel := h.cancel
	h.cancel = nil
	h.mu.Unlock()
	cancel()
	return heldItem[T]{v, n + 1}, err
}

// tellClosed tells the child that the queue is closed and, for it,
// drained: its Gets return ErrClosed once its buffer is empty. The credit
// goes, since no item will come. It returns false if the connection
// failed.
func (h *holder[T]) tellClosed() bool {
	h.mu.Lock()
	h.credit = 0
	h.mu.Unlock()
	h.x.mu.Lock()
	now := h.x.closedNow
	h.x.mu.Unlock()
	return h.b.cn.Notify(serviceQueueChild, wire.Message{Header: xheader(xopClosed, h.x.id, boolField(now))}) == nil
}

// fill encodes first into f, and adds to the batch the items the queue
// holds now, without waiting, while the child's credit lasts, the frame
// stays under maxBatch and no item is large: a large item travels alone
// and uncopied.
func (h *holder[T]) fill(first heldItem[T], f *itemFrame) []heldItem[T] {
	batch := []heldItem[T]{first}
	f.reset()
	for {
		b, more, err := h.x.codec.encodeParts(h.b.cn, batch[len(batch)-1].v)
		size := 0
		if err != nil {
			// Checked at Put, so this is rare: the item is lost, and
			// counted so that Join reports it.
			batch = batch[:len(batch)-1]
			h.x.requeue([]heldItem[T]{{n: deliveryLimit}}, 0, true)
		} else {
			size = f.add(b, more)
		}
		h.mu.Lock()
		room := h.credit - len(batch)
		h.mu.Unlock()
		if room <= 0 || f.size() >= maxBatch || size >= largeItem {
			return batch
		}
		v, n, err := h.x.take(context.Background(), false)
		if err != nil {
			return batch
		}
		batch = append(batch, heldItem[T]{v, n + 1})
	}
}

// send records batch as held by the child, against its credit, and
// queues f on the connection; then it unlocks h.sending. The items are
// held before they are sent, so that if the child dies meanwhile they
// come back when its connection ends.
func (h *holder[T]) send(batch []heldItem[T], f *itemFrame) error {
	h.mu.Lock()
	h.credit -= len(batch)
	h.held = append(h.held, batch...)
	pull := h.pull && h.x.codec.ownBytes()
	h.mu.Unlock()
	var err error
	switch len(f.lens) {
	case 0:
	case 1:
		err = h.sendOne(f.single[0], f.single[1:], pull)
	default:
		err = h.b.cn.Notify(serviceQueueChild, wire.Message{Header: f.header(h.x.id), Raw: f.raw})
	}
	if err == nil && len(f.tail) > 0 {
		err = h.sendOne(f.tail[0], f.tail[1:], pull)
	}
	h.sending.Unlock()
	return err
}

// sendOne sends an item alone, encoded as b then more: by address when it
// is large and the child can pull it, pull being true only for encodings
// that are the item's own memory, which held keeps reachable and in place
// until the child has pulled it (see "Pulled items"); in the socket,
// uncopied, otherwise.
func (h *holder[T]) sendOne(b []byte, more [][]byte, pull bool) error {
	if pull && len(more) == 0 && len(b) >= largeItem {
		return h.b.cn.Notify(serviceQueueChild, wire.Message{Header: xheader(xopItemsAt, h.x.id, uint64(len(b)), wire.PullAddr(b))})
	}
	return h.b.cn.Notify(serviceQueueChild, wire.Message{Header: xheader(xopItems, h.x.id, 1, uint64(piecesLen(b, more))), Raw: b, More: more})
}

// itemFrame is the body of one xopItems notification: the items' lengths,
// for the header, and their bytes. A batch of one item is sent from its
// encoding, uncopied, in the pieces the codec gave; from the second item
// on, they are copied into raw, whose memory is kept for the next batch.
// A large item that ends a batch after smaller ones is not copied: it is
// the tail, sent alone after them.
type itemFrame struct {
	lens   []uint64
	raw    []byte
	single [][]byte // the first item's encoding, in pieces
	tail   [][]byte // the large last item's encoding, in pieces
}

func (f *itemFrame) reset() {
	// The pieces of the last batch's items are the program's memory: let
	// them go.
	clear(f.single)
	clear(f.tail)
	f.lens, f.raw, f.single, f.tail = f.lens[:0], f.raw[:0], f.single[:0], f.tail[:0]
}

// add adds an item encoded as b followed by more, and returns its size.
func (f *itemFrame) add(b []byte, more [][]byte) int {
	size := piecesLen(b, more)
	if len(f.lens) > 0 && size >= largeItem {
		f.tail = append(append(f.tail, b), more...)
		return size
	}
	f.lens = append(f.lens, uint64(size))
	switch len(f.lens) {
	case 1:
		f.single = append(append(f.single, b), more...)
		return size
	case 2:
		for _, p := range f.single {
			f.raw = append(f.raw, p...)
		}
		clear(f.single)
		f.single = f.single[:0]
	}
	f.raw = append(f.raw, b...)
	for _, m := range more {
		f.raw = append(f.raw, m...)
	}
	return size
}

// piecesLen is the length of an encoding given as b followed by more.
func piecesLen(b []byte, more [][]byte) int {
	n := len(b)
	for _, m := range more {
		n += len(m)
	}
	return n
}

// size is what decides when a batch is big enough.
func (f *itemFrame) size() int {
	if len(f.lens) == 1 {
		return int(f.lens[0])
	}
	return len(f.raw)
}

func (f *itemFrame) header(id uint64) []byte {
	return xheader(xopItems, id, append([]uint64{uint64(len(f.lens))}, f.lens...)...)
}

// trim lets a raw buffer grown by an unusually large batch be collected.
func (f *itemFrame) trim() {
	if len(f.lens) > 1 && cap(f.raw) > 4*maxBatch {
		f.raw = nil
	}
}

// largeItem is the size from which an item travels in a frame of its own.
const largeItem = 64 << 10

// release gives back what the child held once its connection is gone.
func (h *holder[T]) release() {
	h.mu.Lock()
	h.released = true
	fed := h.fed
	h.mu.Unlock()
	if fed != nil {
		<-fed
	}
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.mu.Unlock()
	h.x.mu.Lock()
	delete(h.x.holders, h)
	h.x.mu.Unlock()
	h.x.requeue(held, h.b.pid, true)
}
