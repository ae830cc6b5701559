package mp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/mpgo/mp/internal/wire"
)

// proxies is a child's table of the queues it received, by handle number:
// every handle of one queue decodes to the same proxy.
var proxies = proxyTable{byID: map[uint64]proxyIface{}}

// proxyTable maps handle numbers to the proxies of one child.
type proxyTable struct {
	mu   sync.Mutex
	byID map[uint64]proxyIface
}

// proxyIface is an xproxy of any item type, as the table sees it.
type proxyIface interface {
	deliver(op byte, h *hdrReader, raw []byte) error
	flush() error
}

// proxyFor returns the proxy of queue id, making it on first use. One
// proxy per queue, however often its handle is decoded, so that the
// credit, the buffer and the TaskDone count of this process are one.
func proxyFor[T any](cn *wire.Conn, id uint64, joinable bool, maxsize int, pullOffer uint64) *xproxy[T] {
	// A Process child's connection may not serve yet (see childStream):
	// a proxy needs the owner's replies and notifications.
	cn.Serve()
	proxies.mu.Lock()
	defer proxies.mu.Unlock()
	if p, ok := proxies.byID[id].(*xproxy[T]); ok {
		return p
	}
	p := &xproxy[T]{id: id, cn: cn, codec: codecFor[T]().as(roleItem), joinable: joinable, bounded: maxsize > 0,
		window: 1, avail: make(chan struct{}), pull: canPull(pullOffer)}
	proxies.byID[id] = p
	return p
}

// serve handles the owner's notifications on a child's connection.
func (t *proxyTable) serve(req *wire.Request) {
	h := hdrReader{b: req.Msg.Header}
	op := h.byte()
	id := h.uvarint()
	t.mu.Lock()
	p := t.byID[id]
	t.mu.Unlock()
	if h.bad || p == nil {
		// The parent broke the protocol: the connection is the child's
		// lifeline, so end it as a malformed frame would.
		req.Conn.Fail(fmt.Errorf("%w: bad queue message from the parent", wire.ErrMalformed))
		return
	}
	if err := p.deliver(op, &h, req.Msg.Raw); err != nil {
		req.Conn.Fail(err)
	}
}

// flushAll reports every proxy's pending acknowledgements and returns its
// unread items, when a task ends: the process may exit next. It returns
// the first proxy's report of streamed Puts that the owner refused and
// that no call of the task's has reported, which then fails the task: it
// is the last chance to say that items it put never arrived.
func (t *proxyTable) flushAll() error {
	t.mu.Lock()
	ps := make([]proxyIface, 0, len(t.byID))
	for _, p := range t.byID {
		ps = append(ps, p)
	}
	t.mu.Unlock()
	var first error
	for _, p := range ps {
		if err := p.flush(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// xproxy is the queueImpl of a queue in a child: the owner keeps the
// state; the proxy keeps the items prefetched for this process's Gets and
// the Puts in flight.
type xproxy[T any] struct {
	id       uint64
	cn       *wire.Conn
	codec    codec[T]
	joinable bool
	bounded  bool
	pull     bool // items may come by address, to be pulled (xopItemsAt)

	mu        sync.Mutex
	buf       [][]byte // prefetched items, buf[head:] unread
	head      int
	bufBytes  int
	closed    bool
	avail     chan struct{} // closed and replaced when items or closure arrive
	waiting   int           // Gets waiting for items
	credit    int           // items asked for and not yet received
	window    int           // items to keep asked for or buffered
	gotTotal  int
	doneTotal int
	gotUn     int          // got, not yet reported
	puts      []*wire.Call // streamed Puts in flight, oldest first
	// putChecked is set once a Put has had the owner's answer; until then
	// Puts are round trips, so that a child that has never used the queue
	// learns whether it is open before its first Put returns.
	putChecked bool
	putsClosed bool  // the owner refuses Puts: the queue is closed
	refused    int   // streamed Puts the owner refused, not yet reported
	refusedErr error // why the first of them was refused
}

// ackMsg is a report to the owner, built under the lock and sent after.
type ackMsg struct{ got, done, want, returned int }

func (a ackMsg) empty() bool { return a == ackMsg{} }

func (p *xproxy[T]) send(a ackMsg) {
	if a.empty() {
		return
	}
	// An error means the connection is gone, and with it this process.
	var flags uint64
	if p.pull {
		flags |= ackPull
	}
	_ = p.cn.Notify(serviceQueue, wire.Message{Header: xheader(xopAck, p.id,
		uint64(a.got), uint64(a.done), uint64(a.want), uint64(a.returned), flags)})
}

func (p *xproxy[T]) buffered() int { return len(p.buf) - p.head }

// wantLocked is the credit to ask for so that credit plus buffer fill
// the window.
func (p *xproxy[T]) wantLocked() int {
	if p.bufBytes >= maxBuffered {
		return 0
	}
	w := p.window - p.credit - p.buffered()
	if w <= 0 {
		return 0
	}
	p.credit += w
	return w
}

// reportLocked collects what to tell the owner.
func (p *xproxy[T]) reportLocked() ackMsg {
	a := ackMsg{got: p.gotUn, want: p.wantLocked()}
	p.gotUn = 0
	return a
}

func (p *xproxy[T]) broadcastLocked() {
	close(p.avail)
	p.avail = make(chan struct{})
}

// deliver applies a notification of the owner. It runs on the
// connection's reader goroutine, so it must not wait for the writer, and
// it parses what the parent sent as untrusted.
func (p *xproxy[T]) deliver(op byte, h *hdrReader, raw []byte) error {
	switch op {
	case xopItems:
		items, err := parseItems(h, raw)
		if err != nil {
			return err
		}
		p.received(items, len(raw))
	case xopItemsAt:
		n, addr := h.int(), h.uvarint()
		if h.bad || !p.pull {
			return fmt.Errorf("%w: bad queue item address", wire.ErrMalformed)
		}
		// The read runs here, on the reader goroutine, as reading the
		// item from the socket would: the owner holds the item until
		// this process reports it got, which is after.
		b, err := wire.Pull(parentPid, addr, n)
		if err != nil {
			return fmt.Errorf("%w: pulling a queue item from the parent: %w", wire.ErrMalformed, err)
		}
		pulled.Add(1)
		p.received([][]byte{b}, n)
	case xopClosed:
		p.closedByOwner(h.byte() == 1)
	case xopPutsClosed:
		p.mu.Lock()
		p.putsClosed = true
		p.mu.Unlock()
	default:
		return fmt.Errorf("%w: unknown queue operation %d from the parent", wire.ErrMalformed, op)
	}
	return nil
}

// parseItems splits raw into the items of an xopItems notification, whose
// header h holds their count and lengths. The items share raw's memory,
// each capped at its end, so that appending to one cannot overwrite the
// next.
func parseItems(h *hdrReader, raw []byte) ([][]byte, error) {
	n := h.int()
	// Each item's length takes at least a byte of the header: a count
	// beyond that is a lie that must not size an allocation.
	if h.bad || n <= 0 || n > len(h.b) {
		return nil, fmt.Errorf("%w: bad queue items", wire.ErrMalformed)
	}
	items := make([][]byte, n)
	off := 0
	for i := range items {
		l := h.int()
		if h.bad || l > len(raw)-off {
			return nil, fmt.Errorf("%w: bad queue items", wire.ErrMalformed)
		}
		items[i] = raw[off : off+l : off+l]
		off += l
	}
	return items, nil
}

// received buffers items, size bytes in all, against the credit granted,
// and wakes the Gets waiting for them.
func (p *xproxy[T]) received(items [][]byte, size int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head > 0 && p.head == len(p.buf) {
		p.buf, p.head = p.buf[:0], 0
	}
	p.buf = append(p.buf, items...)
	p.bufBytes += size
	p.credit = max(p.credit-len(items), 0)
	p.broadcastLocked()
}

// closedByOwner applies the owner's word that the queue is closed and, for
// this process, drained: Gets return ErrClosed once the buffer is empty.
// After CloseNow (immediate) the buffer is dropped and handed back, so
// that the owner discards what it holds for this process.
func (p *xproxy[T]) closedByOwner(immediate bool) {
	p.mu.Lock()
	p.closed = true
	var a ackMsg
	if immediate {
		a.returned = p.buffered()
		clear(p.buf)
		p.buf, p.head, p.bufBytes = nil, 0, 0
	}
	p.broadcastLocked()
	p.mu.Unlock()
	// Not on the reader goroutine, which must never wait for the writer:
	// the parent may be waiting for this process to read.
	p.cn.Go(func() { p.send(a) })
}

// get takes the next prefetched item. With none there, a blocking get
// grants the owner credit and waits for items to arrive; a TryGet asks the
// owner directly.
func (p *xproxy[T]) get(ctx context.Context, block bool) (T, error) {
	var zero T
	done, err := doneChan(ctx, block)
	if err != nil {
		return zero, err
	}
	p.mu.Lock()
	for {
		if p.buffered() > 0 {
			b, a := p.popLocked()
			p.mu.Unlock()
			p.send(a)
			// Decoded outside the lock: an item's GobDecode may be slow,
			// and its failure is this Get's error, not the queue's.
			return p.codec.decodeOn(p.cn, b)
		}
		if p.closed {
			p.mu.Unlock()
			return zero, ErrClosed
		}
		if !block {
			p.mu.Unlock()
			return p.tryGetRemote()
		}
		avail, a := p.askLocked()
		p.mu.Unlock()
		p.send(a)
		select {
		case <-avail:
			p.mu.Lock()
			p.waiting--
		case <-p.cn.Broken:
			return zero, p.cn.Err()
		case <-done:
			p.giveUp()
			return zero, context.Cause(ctx)
		}
	}
}

// popLocked removes the front of the buffer and counts it as got. The
// report of the items got goes out when the buffer runs dry or half the
// window has been got, so that the owner retires them and grants no
// credit twice, without a message per item.
func (p *xproxy[T]) popLocked() ([]byte, ackMsg) {
	b := p.buf[p.head]
	p.buf[p.head] = nil
	p.head++
	p.bufBytes -= len(b)
	p.gotTotal++
	p.gotUn++
	var a ackMsg
	if p.buffered() == 0 || p.gotUn > p.window/2 {
		a = p.reportLocked()
	}
	return b, a
}

// askLocked registers a Get that waits for items and returns the channel
// that says they came, with the report that asks for them. A Get that
// finds the buffer empty while credit is outstanding means the owner
// cannot keep up with the window: the window doubles, up to maxWindow.
// At least one item of credit is always outstanding for a waiting Get.
func (p *xproxy[T]) askLocked() (chan struct{}, ackMsg) {
	if p.credit > 0 {
		p.window = min(2*p.window, maxWindow)
	}
	a := p.reportLocked()
	if p.credit == 0 {
		p.credit = 1
		a.want++
	}
	p.waiting++
	return p.avail, a
}

// giveUp ends a Get whose ctx is done. The last waiting Get takes back
// the credit it left, with a revoke, so that the owner does not go on
// sending items nobody here waits for; items already on their way are
// buffered, and delivered again elsewhere if this process never gets them.
func (p *xproxy[T]) giveUp() {
	p.mu.Lock()
	p.waiting--
	var revoke bool
	if p.waiting == 0 && p.buffered() == 0 && p.credit > 0 {
		p.credit, revoke = 0, true
	}
	p.mu.Unlock()
	if revoke {
		_ = p.cn.Notify(serviceQueue, wire.Message{Header: xheader(xopRevoke, p.id)})
	}
}

// tryGetRemote is a TryGet that found nothing prefetched: the owner may
// have items this process has not asked for, so it asks, once, without
// granting credit.
func (p *xproxy[T]) tryGetRemote() (T, error) {
	var zero T
	m, err := p.cn.Call(context.Background(), serviceQueue, wire.Message{Header: xheader(xopTryGet, p.id)})
	if err != nil {
		return zero, err
	}
	p.mu.Lock()
	p.gotTotal++
	p.mu.Unlock()
	return p.codec.decodeOn(p.cn, m.Raw)
}

// put sends v to the owner. A Put into an unbounded queue, once the owner
// has answered one Put, streams: it returns as soon as the item is queued
// on the connection, with at most putWindow in flight, and the answers
// are collected by later calls (settle), which report any refusal. A Put
// into a bounded queue, and the first one, wait for the answer: the first
// so that a child learns at once whether the queue is open, and a bounded
// one because the owner makes it wait while the queue is full.
func (p *xproxy[T]) put(ctx context.Context, v T, block bool) error {
	if _, err := doneChan(ctx, block); err != nil {
		return err
	}
	if err := p.settle(ctx, putWindow-1); err != nil {
		return err
	}
	p.mu.Lock()
	closed, checked := p.putsClosed, p.putChecked
	p.mu.Unlock()
	if closed {
		// Collect the answers to every Put in flight, so that all the
		// ones refused are reported now, with the closure, in one error.
		if err := p.settle(ctx, 0); err != nil {
			return err
		}
	}
	if err := p.refusals(); err != nil {
		return err
	}
	if closed {
		return ErrClosed
	}
	b, more, err := p.codec.encodeParts(p.cn, v)
	if err != nil {
		return err
	}
	var flags uint64
	if block {
		flags |= putBlock
	}
	if p.bounded || !checked {
		_, err := p.cn.Call(ctx, serviceQueue, wire.Message{Header: xheader(xopPut, p.id, flags), Raw: b, More: more})
		p.mu.Lock()
		// A Put whose ctx ended may have had no answer: it proves nothing.
		p.putChecked = p.putChecked || ctx.Err() == nil
		if errors.Is(err, ErrClosed) {
			p.putsClosed = true
		}
		p.mu.Unlock()
		return err
	}
	// Unbounded: the owner never makes this Put wait, so it streams.
	cl, err := p.cn.Start(serviceQueue, wire.Message{Header: xheader(xopPut, p.id, flags|putStreamed), Raw: b, More: more})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.puts = append(p.puts, cl)
	p.mu.Unlock()
	return nil
}

// settle waits until at most n Puts are in flight, counting the ones the
// owner refused. It fails only if ctx is done.
func (p *xproxy[T]) settle(ctx context.Context, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for len(p.puts) > 0 {
			select {
			case <-p.puts[0].Done:
				if err := p.puts[0].Err; err != nil {
					p.refused++
					if p.refusedErr == nil {
						p.refusedErr = err
					}
					if errors.Is(err, ErrClosed) {
						p.putsClosed = true
					}
				}
				p.puts[0] = nil
				p.puts = p.puts[1:]
				continue
			default:
			}
			break
		}
		if len(p.puts) <= n {
			return nil
		}
		front := p.puts[0]
		p.mu.Unlock()
		select {
		case <-front.Done:
		case <-ctx.Done():
			p.mu.Lock()
			return context.Cause(ctx)
		}
		p.mu.Lock()
	}
}

// refusals returns, once, the error that reports the streamed Puts the
// owner refused since the last report, or nil if there were none. It
// wraps the first one's error: [ErrClosed], or the *PanicError of the
// item's GobDecode.
func (p *xproxy[T]) refusals() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refused == 0 {
		return nil
	}
	err := fmt.Errorf("mp: %d items this process put never reached the queue, which refused them after their Put had returned: %w", p.refused, p.refusedErr)
	p.refused, p.refusedErr = 0, nil
	return err
}

// len is a round trip; it first collects the answers to the Puts in
// flight, so that this process's own Puts are counted. A lost connection
// reads as 0: Len has no error to return, and the next Put, Get or Join
// reports the loss.
func (p *xproxy[T]) len() int {
	_ = p.settle(context.Background(), 0)
	m, err := p.cn.Call(context.Background(), serviceQueue, wire.Message{Header: xheader(xopLen, p.id)})
	if err != nil {
		return 0
	}
	n, _ := binary.Uvarint(m.Header)
	return int(n)
}

// close is a round trip, after the Puts in flight are answered, so that
// they are not refused by this process's own Close.
func (p *xproxy[T]) close(immediate bool) {
	_ = p.settle(context.Background(), 0)
	// An error means the parent is gone; so is this process, shortly.
	_, _ = p.cn.Call(context.Background(), serviceQueue, wire.Message{Header: xheader(xopClose, p.id, boolField(immediate))})
}

// taskDone checks the count locally, since the owner cannot answer
// without a round trip, and reports at once (see the tables in xqueue.go).
func (p *xproxy[T]) taskDone() error {
	p.mu.Lock()
	if p.doneTotal >= p.gotTotal {
		p.mu.Unlock()
		return errTooManyTaskDone
	}
	p.doneTotal++
	// Reported at once, not gathered: if this process dies, the owner
	// counts as lost the items it holds for us, and an item marked done
	// must not be among them. The report is queued on the connection
	// before anything this process sends after TaskDone returns, and the
	// owner reads all that a dead child sent before it counts.
	a := ackMsg{got: p.gotUn, done: 1}
	p.gotUn = 0
	p.mu.Unlock()
	p.send(a)
	return nil
}

// join reports first the Puts the owner refused, since they are this
// process's to hear of, then waits for the owner's Join.
func (p *xproxy[T]) join(ctx context.Context) error {
	if err := p.settle(ctx, 0); err != nil {
		return err
	}
	if err := p.refusals(); err != nil {
		return err
	}
	// Every TaskDone of this process has been reported already, and the
	// owner reads the reports before this request.
	_, err := p.cn.Call(ctx, serviceQueue, wire.Message{Header: xheader(xopJoin, p.id)})
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// flush reports what is pending and hands back the unread items, which
// the owner delivers again to others. It returns the report of the
// streamed Puts the owner refused that no call has returned yet.
func (p *xproxy[T]) flush() error {
	_ = p.settle(context.Background(), 0)
	// Revoke and wait for the owner's answer, which comes after every item
	// it sent before: then the buffer holds all of them, and handing back
	// its count returns exactly the newest items the owner holds for us. A
	// pool worker keeps its connection for the next task, so an item that
	// arrived after a hand-back would be taken twice.
	_, _ = p.cn.Call(context.Background(), serviceQueue, wire.Message{Header: xheader(xopRevoke, p.id)})
	p.mu.Lock()
	a := ackMsg{got: p.gotUn, returned: p.buffered()}
	p.gotUn = 0
	clear(p.buf)
	p.buf, p.head, p.bufBytes = nil, 0, 0
	p.credit = 0
	p.mu.Unlock()
	p.send(a)
	return p.refusals()
}
