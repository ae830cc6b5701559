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
	handle(req *request, op byte, h *hdrReader)
	release()
}

// broker serves the queue requests of one child: one holder per queue the
// child uses. It lives as long as the child's connection.
type broker struct {
	ch *child

	mu      sync.Mutex
	holders map[uint64]xholder
	gone    bool
}

func (b *broker) serve(req *request) {
	h := hdrReader{b: req.msg.header}
	op := h.byte()
	id := h.uvarint()
	if h.bad {
		b.drop(fmt.Errorf("%w: queue request without an operation", wire.ErrMalformed))
		req.reply(message{}, errors.New("mp: malformed queue request"))
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
		req.reply(message{}, fmt.Errorf("mp: process %d has no shared queue %d", b.ch.pid, id))
		return
	}
	hd.handle(req, op, &h)
}

// drop kills a child that sent a malformed queue message, as the
// connection does for a malformed frame.
func (b *broker) drop(err error) {
	b.ch.mu.Lock()
	if b.ch.protoErr == nil {
		b.ch.protoErr = fmt.Errorf("mp: process %d broke the protocol and was killed: %w", b.ch.pid, err)
	}
	b.ch.mu.Unlock()
	_ = b.ch.signal(sigKill)
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
// the items it holds, and the feeder goroutine that sends it items.
type holder[T any] struct {
	x *xstate[T]
	b *broker

	// sending is held by the feeder from before it takes an item until the
	// batch holding it has been queued on the connection, so that a
	// revoke the child waits for is answered only after every item sent
	// before it: the child hands back its unread buffer by count.
	sending sync.Mutex

	mu       sync.Mutex
	credit   int
	held     []heldItem[T] // in delivery order, which is the child's Get order
	wake     chan struct{}
	cancel   context.CancelFunc // ends the feeder's wait, on revoke
	feeding  bool
	fed      chan struct{} // closed when the feeder ends
	released bool
}

func (h *holder[T]) handle(req *request, op byte, hr *hdrReader) {
	x := h.x
	switch op {
	case xopPut:
		flags := hr.byte()
		if hr.bad {
			h.b.drop(fmt.Errorf("%w: short queue put", wire.ErrMalformed))
			req.reply(message{}, errors.New("mp: malformed queue request"))
			return
		}
		block := flags&putBlock != 0
		// A panic in the item's GobDecode comes back from decodeOn as a
		// *PanicError: it fails this Put, not the process.
		v, err := x.codec.decodeOn(req.c, req.msg.raw)
		if err == nil && (!block || x.q.maxsize <= 0) {
			// Never waits: served on the reader goroutine, so that the
			// item is in the queue before any later frame of the child.
			err = x.q.put(context.Background(), v, false)
		} else if err == nil {
			req.c.goroutine(func() { req.reply(message{}, x.q.put(req.ctx, v, true)) })
			return
		}
		if err != nil && flags&putStreamed != 0 {
			x.refuse(h.b.ch.pid, err)
		}
		req.reply(message{}, err)
	case xopTryGet:
		v, n, err := x.take(context.Background(), false)
		if err != nil {
			req.reply(message{}, err)
			return
		}
		b, err := x.codec.encodeOn(req.c, v)
		if err != nil {
			x.finish(1)
			req.reply(message{}, err)
			return
		}
		if x.joinable {
			h.mu.Lock()
			h.held = append(h.held, heldItem[T]{v, n + 1})
			h.mu.Unlock()
		}
		req.reply(message{raw: b}, nil)
	case xopAck:
		got, done, want, returned := hr.int(), hr.int(), hr.int(), hr.int()
		if hr.bad {
			h.b.drop(fmt.Errorf("%w: short queue acknowledgement", wire.ErrMalformed))
			return
		}
		h.ack(got, done, want, returned)
	case xopRevoke:
		h.mu.Lock()
		h.credit = 0
		if h.cancel != nil {
			h.cancel()
		}
		h.mu.Unlock()
		if req.id != 0 {
			// The child waits for this answer before it hands back its
			// buffer; it comes after any batch the feeder is sending.
			req.c.goroutine(func() {
				h.sending.Lock()
				defer h.sending.Unlock()
				req.reply(message{}, nil)
			})
		}
	case xopLen:
		req.reply(message{header: binary.AppendUvarint(nil, uint64(x.len()))}, nil)
	case xopClose:
		x.close(hr.byte() == 1)
		req.reply(message{}, nil)
	case xopJoin:
		req.c.goroutine(func() { req.reply(message{}, x.join(req.ctx)) })
	default:
		h.b.drop(fmt.Errorf("%w: unknown queue operation %d", wire.ErrMalformed, op))
		req.reply(message{}, errors.New("mp: malformed queue request"))
	}
}

// ack applies a child's report: got items retire those of a Queue, done
// ones those of a JoinableQueue, want adds credit, and returned items (the
// child's unread buffer, at the end of held) go back to the queue.
func (h *holder[T]) ack(got, done, want, returned int) {
	h.mu.Lock()
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
	h.x.requeue(back, h.b.ch.pid, false)
	if start {
		h.b.ch.conn.goroutine(h.feed)
	} else if want > 0 {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// feed sends items to the child while it has credit. It ends when the
// connection does.
func (h *holder[T]) feed() {
	defer close(h.fed)
	cn := h.b.ch.conn
	done := cn.ctx.Done()
	var lens []uint64
	var raw []byte
	for {
		h.mu.Lock()
		for h.credit <= 0 {
			h.mu.Unlock()
			select {
			case <-h.wake:
			case <-done:
				return
			}
			h.mu.Lock()
		}
		ctx, cancel := context.WithCancel(cn.ctx)
		h.cancel = cancel
		h.mu.Unlock()
		h.sending.Lock()
		v, n, err := h.x.take(ctx, true)
		h.mu.Lock()
		h.cancel = nil
		h.mu.Unlock()
		cancel()
		if err != nil {
			h.sending.Unlock()
			if cn.ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrClosed) {
				h.mu.Lock()
				h.credit = 0
				h.mu.Unlock()
				h.x.mu.Lock()
				now := h.x.closedNow
				h.x.mu.Unlock()
				if cn.notify(serviceQueueChild, message{header: xheader(xopClosed, h.x.id, boolField(now))}) != nil {
					return
				}
			}
			continue
		}
		// Fill the batch with what is there, within the credit.
		batch := []heldItem[T]{{v, n + 1}}
		lens, raw = lens[:0], raw[:0]
		var single []byte
		for {
			b, err := h.x.codec.encodeOn(cn, batch[len(batch)-1].v)
			if err != nil {
				// Checked at Put, so this is rare: the item is lost.
				batch = batch[:len(batch)-1]
				h.x.requeue([]heldItem[T]{{n: deliveryLimit}}, 0, true)
			} else {
				lens = append(lens, uint64(len(b)))
				if len(lens) == 1 {
					single = b
				} else {
					if len(lens) == 2 {
						raw = append(raw, single...)
					}
					raw = append(raw, b...)
				}
			}
			h.mu.Lock()
			room := h.credit - len(batch)
			h.mu.Unlock()
			if room <= 0 || len(raw)+len(single) >= maxBatch || len(b) >= largeItem {
				break
			}
			v, n, err := h.x.take(context.Background(), false)
			if err != nil {
				break
			}
			batch = append(batch, heldItem[T]{v, n + 1})
		}
		if len(batch) == 0 {
			h.sending.Unlock()
			continue
		}
		h.mu.Lock()
		h.credit -= len(batch)
		h.held = append(h.held, batch...)
		h.mu.Unlock()
		hdr := xheader(xopItems, h.x.id, append([]uint64{uint64(len(lens))}, lens...)...)
		payload := raw
		if len(lens) == 1 {
			payload = single
		}
		err = cn.notify(serviceQueueChild, message{header: hdr, raw: payload})
		h.sending.Unlock()
		if err != nil {
			return
		}
		if len(lens) > 1 && cap(raw) > 4*maxBatch {
			raw = nil
		}
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
	h.x.requeue(held, h.b.ch.pid, true)
}
