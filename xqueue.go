package mp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/mpgo/mp/internal/wire"
)

// Queues across processes.
//
// A queue that crosses to a child inside a task's argument is encoded as a
// handle: the number under which its owner registered it. In the child the
// handle decodes to a queue whose impl is an xproxy talking to the owner
// over the child's connection. The owner keeps the state: its xstate wraps
// the local queue, and a broker on every child connection serves the
// children's requests.
//
// Gets are prefetched: a child grants its broker credit for a number of
// items (a window that starts at one and doubles each time a Get finds
// the child's buffer empty), and a feeder goroutine per child and queue
// sends items in batches as credit allows. Every item sent to a child is
// held by that child's broker until the child reports it finished — got,
// for a Queue; marked done, for a JoinableQueue — so that when the child
// dies the items come back (at-least-once, up to deliveryLimit deliveries
// each). Puts from a child to an unbounded queue stream: a window of
// putWindow unacknowledged puts, each acknowledged once the item is in the
// owner's queue. Puts to a bounded queue are one round trip each, so that
// a full queue blocks the putting child.
//
// A streamed Put returns before the owner has the item, so the owner may
// still refuse it: the queue was closed meanwhile, or the item's decoding
// panicked. No such item vanishes: the child's next Put or Join (or, failing
// those, the end of its task) returns an error that counts the refused
// items, and a JoinableQueue's Join in the owner reports them with ErrLost.
// To keep that window small, a proxy's first Put is a round trip, and the
// owner tells every child that uses the queue when it closes, so that the
// child's later Puts fail at once, as the owner's do.

// The services of the queue protocol: the broker in the owner, the proxy
// side in a child.
const (
	serviceQueue      = "mp.q"
	serviceQueueChild = "mp.qc"
)

// Operations. A request's header is [op][uvarint queue id][op's fields].
const (
	// child → owner
	xopPut        byte = iota + 1 // [u8 flags], raw: the item; reply when it is in the queue
	xopTryGet                     // reply raw: the item
	xopAck                        // notify [uvarint got][uvarint done][uvarint want][uvarint returned]
	xopRevoke                     // notify: no more items for now
	xopLen                        // reply header: uvarint length
	xopClose                      // [u8 immediate]
	xopJoin                       // reply when the queue is idle
	xopItems                      // owner → child notify [uvarint n][n × uvarint len], raw: the items
	xopClosed                     // owner → child notify [u8 immediate]
	xopPutsClosed                 // owner → child notify: the queue refuses Puts from now on
)

// The flags of an xopPut.
const (
	putBlock    = 1 << iota // wait for room in a full queue
	putStreamed             // the child's Put has returned already
)

// roleItem is what a queue's codec says it was encoding or decoding when a
// marshalling method panicked.
const roleItem = "the queue item"

const (
	// deliveryLimit is how many times an item is handed to a child before
	// it counts as lost when that child dies holding it.
	deliveryLimit = 3
	// maxWindow is the most items a child asks for ahead of its Gets;
	// maxBuffered the most bytes it keeps prefetched.
	maxWindow   = 512
	maxBuffered = 8 << 20
	// maxBatch is the size at which a feeder stops adding items to one
	// frame; larger items travel alone and uncopied.
	maxBatch = 256 << 10
	// putWindow is the number of Puts a child has in flight to an
	// unbounded queue before Put waits for acknowledgements.
	putWindow = 256
)

// errHandleForwarded is returned when a child tries to pass a queue it
// received from its parent on to a child of its own.
var errHandleForwarded = errors.New("mp: a queue received from a parent process cannot be passed on to another process; create the queue in the process that starts the children, or pass the items instead")

// xtable holds the queues this process owns and has handed to children,
// by handle number. An entry stays for the life of the process: a child may
// start using its handle at any time.
var xtable = struct {
	mu   sync.Mutex
	next uint64
	byID map[uint64]xowner
}{byID: map[uint64]xowner{}}

// xowner is an xstate of any item type, as the broker sees it.
type xowner interface {
	newHolder(b *broker) xholder
}

// xholder is the state of one queue on one child connection.
type xholder interface {
	handle(req *request, op byte, h *hdrReader)
	release()
}

// hdrReader parses the uvarint fields of a header; bad is set once a
// field is missing.
type hdrReader struct {
	b   []byte
	bad bool
}

func (h *hdrReader) byte() byte {
	if len(h.b) < 1 {
		h.bad = true
		return 0
	}
	c := h.b[0]
	h.b = h.b[1:]
	return c
}

func (h *hdrReader) uvarint() uint64 {
	v, n := binary.Uvarint(h.b)
	if n <= 0 {
		h.bad = true
		return 0
	}
	h.b = h.b[n:]
	return v
}

func (h *hdrReader) int() int {
	v := h.uvarint()
	if v > 1<<40 {
		h.bad = true
		return 0
	}
	return int(v)
}

func xheader(op byte, id uint64, fields ...uint64) []byte {
	b := make([]byte, 0, 2+10*len(fields)+10)
	b = append(b, op)
	b = binary.AppendUvarint(b, id)
	for _, f := range fields {
		b = binary.AppendUvarint(b, f)
	}
	return b
}

func boolField(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

// xstate is the owner's side of a shared queue: the local queue, the
// items that dead children held and that wait to be delivered again, and
// the items lost for good.
type xstate[T any] struct {
	id       uint64
	c        *core[T]
	codec    codec[T]
	joinable bool

	mu        sync.Mutex
	redo      []heldItem[T] // items back from dead children, delivered first
	kick      chan struct{} // closed and replaced when redo grows
	closedNow bool          // CloseNow was called
	lost      int           // items lost since the last Join reported them
	lostPids  map[int]bool  // the processes that held them
	// refused counts the streamed Puts refused since the last Join
	// reported them, refusedPids the children that made them, and
	// refusedErr is why the first was refused.
	refused     int
	refusedPids map[int]bool
	refusedErr  error
	holders     map[*holder[T]]struct{} // of live children: told when the queue closes
}

// heldItem is an item and the number of times it has been delivered.
type heldItem[T any] struct {
	v T
	n int
}

// share registers c as shared, once, and returns its state.
func (c *core[T]) share(joinable bool) *xstate[T] {
	if x := c.xs.Load(); x != nil {
		return x
	}
	x := &xstate[T]{c: c, codec: codecFor[T]().as(roleItem), joinable: joinable, kick: make(chan struct{}),
		holders: map[*holder[T]]struct{}{}}
	xtable.mu.Lock()
	defer xtable.mu.Unlock()
	if old := c.xs.Load(); old != nil {
		return old
	}
	xtable.next++
	x.id = xtable.next
	xtable.byID[x.id] = x
	c.xs.Store(x)
	return x
}

// gobEncode writes the handle of the queue. In the owner it shares the
// queue; in a child it refuses, since the handle names a queue of the
// parent that a grandchild cannot reach.
func (c *core[T]) gobEncode(joinable bool) ([]byte, error) {
	if c.impl != nil {
		return nil, errHandleForwarded
	}
	x := c.share(joinable)
	b := []byte{1}
	b = binary.AppendUvarint(b, x.id)
	b = binary.AppendVarint(b, int64(c.local.maxsize))
	b = append(b, byte(boolField(joinable)))
	return append(b, reflect.TypeFor[T]().String()...), nil
}

// gobDecode makes c, a fresh queue, the proxy of the handle b.
func (c *core[T]) gobDecode(b []byte, joinable bool) error {
	what := "Queue"
	if joinable {
		what = "JoinableQueue"
	}
	h := hdrReader{b: b}
	if h.byte() != 1 {
		return fmt.Errorf("mp: bad %s handle", what)
	}
	id := h.uvarint()
	maxsize, n := binary.Varint(h.b)
	if h.bad || n <= 0 || len(h.b) < n+1 {
		return fmt.Errorf("mp: bad %s handle", what)
	}
	j := h.b[n] == 1
	typ := string(h.b[n+1:])
	if j != joinable {
		return fmt.Errorf("mp: a handle of a %s cannot be decoded as a %s", map[bool]string{false: "Queue", true: "JoinableQueue"}[j], what)
	}
	if want := reflect.TypeFor[T]().String(); typ != want {
		return fmt.Errorf("mp: a handle of a %s[%s] cannot be decoded as a %s[%s]", what, typ, what, want)
	}
	if parentConn == nil {
		return fmt.Errorf("mp: a %s handle can be decoded only in a child process that mp started", what)
	}
	if c.impl != nil || c.xs.Load() != nil {
		return fmt.Errorf("mp: GobDecode into a %s already in use", what)
	}
	c.impl = proxyFor[T](parentConn, id, joinable, int(maxsize))
	return nil
}

// checkEncodable reports whether v can cross to a child, so that a Put of
// a shared queue fails in the caller rather than in a feeder later.
func (x *xstate[T]) checkEncodable(v T) (err error) {
	// The item's own marshalling methods run here, in the caller of Put:
	// their panic fails that Put, as any other encoding error does.
	defer recoverHook(&err, "encoding", x.codec.typ, "the item")
	var size int
	switch x.codec.kind {
	case codecBytes, codecString:
		size = reflect.ValueOf(v).Len()
	case codecGob:
		var b []byte
		if gt := streamType(x.codec.typ); gt != nil && x.codec.typ.Kind() != reflect.Interface {
			if b, err = gt.encode(reflect.ValueOf(v)); err != nil {
				err = fmt.Errorf("mp: cannot encode %v: %w", x.codec.typ, err)
			}
		} else {
			b, err = x.codec.encode(v)
		}
		if err != nil {
			return err
		}
		size = len(b)
	default:
		// The fixed encodings of numbers cannot fail and are small.
		return nil
	}
	if limit := wire.DefaultMaxFrame - 1024; size > limit {
		return frameTooLarge(size, limit)
	}
	return nil
}

func (x *xstate[T]) put(ctx context.Context, v T, block bool) error {
	if err := x.checkEncodable(v); err != nil {
		return err
	}
	return x.c.local.put(ctx, v, block)
}

// take removes the next item: one back from a dead child first, then the
// queue's own. n is the number of deliveries the item has had.
func (x *xstate[T]) take(ctx context.Context, block bool) (T, int, error) {
	var zero T
	if block {
		if _, err := doneChan(ctx); err != nil {
			return zero, 0, err
		}
	}
	for {
		x.mu.Lock()
		if len(x.redo) > 0 {
			it := x.redo[0]
			x.redo[0] = heldItem[T]{}
			x.redo = x.redo[1:]
			x.mu.Unlock()
			return it.v, it.n, nil
		}
		kick := x.kick
		x.mu.Unlock()
		v, err := x.c.local.get(ctx, false)
		if err == nil || !block || !errors.Is(err, ErrEmpty) {
			return v, 0, err
		}
		// Wait for an item, or for a redelivered one (kick).
		kctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-kick:
				cancel()
			case <-kctx.Done():
			}
		}()
		v, err = x.c.local.get(kctx, true)
		kicked := err != nil && ctx.Err() == nil && kctx.Err() != nil
		cancel()
		if err == nil {
			return v, 0, nil
		}
		if !kicked {
			if ctx.Err() != nil {
				return zero, 0, ctx.Err()
			}
			return zero, 0, err
		}
	}
}

func (x *xstate[T]) len() int {
	x.mu.Lock()
	n := len(x.redo)
	x.mu.Unlock()
	return n + x.c.local.len()
}

func (x *xstate[T]) close(immediate bool) {
	x.c.local.close(immediate)
	x.mu.Lock()
	cns := make([]*conn, 0, len(x.holders))
	for h := range x.holders {
		cns = append(cns, h.b.ch.conn)
	}
	n := 0
	if immediate {
		n = len(x.redo)
		x.redo = nil
		x.closedNow = true
	}
	x.mu.Unlock()
	x.finish(n)
	// Tell the children, so that their Puts fail at once rather than
	// after the item has crossed. Each notification is sent from a
	// goroutine of its own, which ends once it is queued on the connection
	// or the connection has ended: Close must not wait for a child that
	// does not read.
	hdr := xheader(xopPutsClosed, x.id)
	for _, cn := range cns {
		go func() { _ = cn.notify(serviceQueueChild, message{header: hdr}) }()
	}
}

// finish marks n items done without a TaskDone: discarded or lost.
func (x *xstate[T]) finish(n int) {
	if n > 0 && x.joinable {
		x.c.local.taskDoneN(n)
	}
}

func (x *xstate[T]) join(ctx context.Context) error {
	if err := x.c.local.join(ctx); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var msg []string
	if x.lost > 0 {
		msg = append(msg, fmt.Sprintf("%d items were not finished: process %s died holding them after they had been delivered %d times", x.lost, pidList(x.lostPids), deliveryLimit))
	}
	var err error
	switch {
	case x.refused > 0:
		msg = append(msg, fmt.Sprintf("%d items that process %s put never reached the queue, which refused them after the child's Put had returned", x.refused, pidList(x.refusedPids)))
		err = fmt.Errorf("%w: %s: %w", ErrLost, strings.Join(msg, "; "), x.refusedErr)
	case x.lost > 0:
		err = fmt.Errorf("%w: %s", ErrLost, msg[0])
	}
	x.lost, x.lostPids = 0, nil
	x.refused, x.refusedPids, x.refusedErr = 0, nil, nil
	return err
}

// pidList formats a set of process IDs in increasing order.
func pidList(set map[int]bool) string {
	pids := make([]int, 0, len(set))
	for p := range set {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

// refuse counts an item of a streamed Put that the queue refused, with
// err, after the child's Put had returned nil, so that Join reports it.
// Only a JoinableQueue has a Join to report it to; the child hears of it
// in either case.
func (x *xstate[T]) refuse(pid int, err error) {
	if !x.joinable {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.refused++
	if x.refusedPids == nil {
		x.refusedPids = map[int]bool{}
	}
	x.refusedPids[pid] = true
	if x.refusedErr == nil {
		x.refusedErr = err
	}
}

// requeue takes back the items a child held: each is delivered again
// unless it has been delivered deliveryLimit times, in which case it is
// lost. pid is the child, for the error Join reports.
func (x *xstate[T]) requeue(items []heldItem[T], pid int, count bool) {
	if len(items) == 0 {
		return
	}
	lost, dropped := 0, 0
	x.mu.Lock()
	for _, it := range items {
		switch {
		case x.closedNow:
			dropped++
		case count && it.n >= deliveryLimit:
			lost++
		default:
			if !count {
				it.n--
			}
			x.redo = append(x.redo, it)
		}
	}
	if lost > 0 {
		x.lost += lost
		if x.lostPids == nil {
			x.lostPids = map[int]bool{}
		}
		x.lostPids[pid] = true
	}
	close(x.kick)
	x.kick = make(chan struct{})
	x.mu.Unlock()
	x.finish(lost + dropped)
}

// taskDoneN marks n tasks done at once, for TaskDones that a child
// reported in a batch and for items lost or discarded.
func (q *localQueue[T]) taskDoneN(n int) {
	for {
		u := q.unfinished.Load()
		if q.unfinished.CompareAndSwap(u, max(u-int64(n), 0)) {
			break
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.checkIdle()
}

func (x *xstate[T]) newHolder(b *broker) xholder {
	h := &holder[T]{x: x, b: b, wake: make(chan struct{}, 1)}
	x.mu.Lock()
	x.holders[h] = struct{}{}
	x.mu.Unlock()
	return h
}

// broker serves the queue requests of one child: one holder per queue the
// child uses. It lives as long as the child's connection.
type broker struct {
	ch *child

	mu      sync.Mutex
	holders map[uint64]xholder
	gone    bool
}

func init() {
	parentHooks = append(parentHooks, func(ch *child) {
		b := &broker{ch: ch, holders: map[uint64]xholder{}}
		ch.conn.handle(serviceQueue, b.serve)
		context.AfterFunc(ch.conn.ctx, b.release)
	})
	childHooks = append(childHooks, func(c *conn, _ bool) {
		c.handle(serviceQueueChild, proxies.serve)
	})
	childRunDone = append(childRunDone, proxies.flushAll)
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
		if err == nil && (!block || x.c.local.maxsize <= 0) {
			// Never waits: served on the reader goroutine, so that the
			// item is in the queue before any later frame of the child.
			err = x.c.local.put(context.Background(), v, false)
		} else if err == nil {
			req.c.goroutine(func() { req.reply(message{}, x.c.local.put(req.ctx, v, true)) })
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
		h.x.c.local.taskDoneN(done)
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

// proxies is a child's table of the queues it received, by handle number:
// every handle of one queue decodes to the same proxy.
var proxies = proxyTable{byID: map[uint64]proxyIface{}}

type proxyTable struct {
	mu   sync.Mutex
	byID map[uint64]proxyIface
}

type proxyIface interface {
	deliver(op byte, h *hdrReader, raw []byte) error
	flush() error
}

func proxyFor[T any](cn *conn, id uint64, joinable bool, maxsize int) *xproxy[T] {
	// A Process child's connection may not serve yet (see childStream):
	// a proxy needs the owner's replies and notifications.
	cn.serve()
	proxies.mu.Lock()
	defer proxies.mu.Unlock()
	if p, ok := proxies.byID[id].(*xproxy[T]); ok {
		return p
	}
	p := &xproxy[T]{id: id, cn: cn, codec: codecFor[T]().as(roleItem), joinable: joinable, bounded: maxsize > 0,
		window: 1, avail: make(chan struct{})}
	proxies.byID[id] = p
	return p
}

// serve handles the owner's notifications on a child's connection.
func (t *proxyTable) serve(req *request) {
	h := hdrReader{b: req.msg.header}
	op := h.byte()
	id := h.uvarint()
	t.mu.Lock()
	p := t.byID[id]
	t.mu.Unlock()
	if h.bad || p == nil {
		// The parent broke the protocol: the connection is the child's
		// lifeline, so end it as a malformed frame would.
		req.c.fail(fmt.Errorf("%w: bad queue message from the parent", wire.ErrMalformed))
		return
	}
	if err := p.deliver(op, &h, req.msg.raw); err != nil {
		req.c.fail(err)
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
	cn       *conn
	codec    codec[T]
	joinable bool
	bounded  bool

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
	gotUn     int     // got, not yet reported
	puts      []*call // streamed Puts in flight, oldest first
	// putChecked is set once a Put has had the owner's answer; until then
	// Puts are round trips, so that a child that has never used the queue
	// learns whether it is open before its first Put returns.
	putChecked bool
	putsClosed bool  // the owner refuses Puts: the queue is closed
	refused    int   // streamed Puts the owner refused, not yet reported
	refusedErr error // why the first of them was refused
}

var _ queueImpl[int] = (*xproxy[int])(nil)

// ackMsg is a report to the owner, built under the lock and sent after.
type ackMsg struct{ got, done, want, returned int }

func (a ackMsg) empty() bool { return a == ackMsg{} }

func (p *xproxy[T]) send(a ackMsg) {
	if a.empty() {
		return
	}
	// An error means the connection is gone, and with it this process.
	_ = p.cn.notify(serviceQueue, message{header: xheader(xopAck, p.id,
		uint64(a.got), uint64(a.done), uint64(a.want), uint64(a.returned))})
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

func (p *xproxy[T]) deliver(op byte, h *hdrReader, raw []byte) error {
	switch op {
	case xopItems:
		n := h.int()
		// Each item's length takes at least a byte of the header: a
		// count beyond that is a lie that must not size an allocation.
		if h.bad || n <= 0 || n > len(h.b) {
			return fmt.Errorf("%w: bad queue items", wire.ErrMalformed)
		}
		items := make([][]byte, n)
		off := 0
		for i := range items {
			l := h.int()
			if h.bad || l > len(raw)-off {
				return fmt.Errorf("%w: bad queue items", wire.ErrMalformed)
			}
			items[i] = raw[off : off+l : off+l]
			off += l
		}
		p.mu.Lock()
		if p.head > 0 && p.head == len(p.buf) {
			p.buf, p.head = p.buf[:0], 0
		}
		p.buf = append(p.buf, items...)
		p.bufBytes += len(raw)
		p.credit = max(p.credit-n, 0)
		p.broadcastLocked()
		p.mu.Unlock()
	case xopClosed:
		immediate := h.byte() == 1
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
		// Not on the reader goroutine, which must never wait for the
		// writer: the parent may be waiting for us to read.
		p.cn.goroutine(func() { p.send(a) })
	case xopPutsClosed:
		p.mu.Lock()
		p.putsClosed = true
		p.mu.Unlock()
	default:
		return fmt.Errorf("%w: unknown queue operation %d from the parent", wire.ErrMalformed, op)
	}
	return nil
}

func (p *xproxy[T]) get(ctx context.Context, block bool) (T, error) {
	var zero T
	var done <-chan struct{}
	if block {
		var err error
		if done, err = doneChan(ctx); err != nil {
			return zero, err
		}
	}
	p.mu.Lock()
	for {
		if p.buffered() > 0 {
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
			p.mu.Unlock()
			p.send(a)
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
		if p.credit > 0 {
			// Starved with credit outstanding: ask further ahead.
			p.window = min(2*p.window, maxWindow)
		}
		a := p.reportLocked()
		if p.credit == 0 {
			p.credit = 1
			a.want++
		}
		avail := p.avail
		p.waiting++
		p.mu.Unlock()
		p.send(a)
		select {
		case <-avail:
			p.mu.Lock()
			p.waiting--
		case <-p.cn.broken:
			return zero, p.cn.brokenErr()
		case <-done:
			p.mu.Lock()
			p.waiting--
			var revoke bool
			if p.waiting == 0 && p.buffered() == 0 && p.credit > 0 {
				p.credit, revoke = 0, true
			}
			p.mu.Unlock()
			if revoke {
				_ = p.cn.notify(serviceQueue, message{header: xheader(xopRevoke, p.id)})
			}
			return zero, ctx.Err()
		}
	}
}

func (p *xproxy[T]) tryGetRemote() (T, error) {
	var zero T
	m, err := p.cn.call(context.Background(), serviceQueue, message{header: xheader(xopTryGet, p.id)})
	if err != nil {
		return zero, err
	}
	p.mu.Lock()
	p.gotTotal++
	p.mu.Unlock()
	return p.codec.decodeOn(p.cn, m.raw)
}

func (p *xproxy[T]) put(ctx context.Context, v T, block bool) error {
	if block {
		if _, err := doneChan(ctx); err != nil {
			return err
		}
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
	b, err := p.codec.encodeOn(p.cn, v)
	if err != nil {
		return err
	}
	var flags uint64
	if block {
		flags |= putBlock
	}
	if p.bounded || !checked {
		_, err := p.cn.call(ctx, serviceQueue, message{header: xheader(xopPut, p.id, flags), raw: b})
		p.mu.Lock()
		p.putChecked = p.putChecked || ctx.Err() == nil
		if errors.Is(err, ErrClosed) {
			p.putsClosed = true
		}
		p.mu.Unlock()
		return err
	}
	// Unbounded: the owner never makes this Put wait, so it streams.
	cl, err := p.cn.start(serviceQueue, message{header: xheader(xopPut, p.id, flags|putStreamed), raw: b})
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
			case <-p.puts[0].done:
				if err := p.puts[0].err; err != nil {
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
		case <-front.done:
		case <-ctx.Done():
			p.mu.Lock()
			return ctx.Err()
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

func (p *xproxy[T]) len() int {
	_ = p.settle(context.Background(), 0)
	m, err := p.cn.call(context.Background(), serviceQueue, message{header: xheader(xopLen, p.id)})
	if err != nil {
		return 0
	}
	n, _ := binary.Uvarint(m.header)
	return int(n)
}

func (p *xproxy[T]) close(immediate bool) {
	_ = p.settle(context.Background(), 0)
	// An error means the parent is gone; so is this process, shortly.
	_, _ = p.cn.call(context.Background(), serviceQueue, message{header: xheader(xopClose, p.id, boolField(immediate))})
}

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

func (p *xproxy[T]) join(ctx context.Context) error {
	if err := p.settle(ctx, 0); err != nil {
		return err
	}
	if err := p.refusals(); err != nil {
		return err
	}
	// Every TaskDone of this process has been reported already, and the
	// owner reads the reports before this request.
	_, err := p.cn.call(ctx, serviceQueue, message{header: xheader(xopJoin, p.id)})
	if ctx.Err() != nil {
		return ctx.Err()
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
	_, _ = p.cn.call(context.Background(), serviceQueue, message{header: xheader(xopRevoke, p.id)})
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

// GobEncode encodes the queue as a handle, so that a *Queue inside a
// task's argument crosses to a child process, where it decodes to a queue
// with the same methods whose state stays in this process: the Go twin of
// passing a multiprocessing.Queue in Process(args=...). From then on every
// Put in this process also checks that its item can be encoded, so that an
// item that cannot cross fails in the caller. A queue that a child
// received cannot be passed on to a grandchild: GobEncode returns an error
// there. Programs do not call GobEncode themselves.
//
// For each child that Gets from the queue, this process runs one goroutine
// that sends the child items; it ends when the child's connection does. A
// shared queue stays registered for the life of the process, since a child
// may use its handle at any time.
func (q *Queue[T]) GobEncode() ([]byte, error) { return q.c.gobEncode(false) }

// GobDecode makes q, a new Queue, the child's side of a handle written by
// [Queue.GobEncode]. It fails outside a child process that mp started.
func (q *Queue[T]) GobDecode(b []byte) error { return q.c.gobDecode(b, false) }

// GobEncode encodes the queue as a handle, so that a *JoinableQueue inside
// a task's argument crosses to a child process, as [Queue.GobEncode] does;
// it is the Go twin of passing a multiprocessing.JoinableQueue in
// Process(args=...).
func (q *JoinableQueue[T]) GobEncode() ([]byte, error) { return q.c.gobEncode(true) }

// GobDecode makes q, a new JoinableQueue, the child's side of a handle
// written by [JoinableQueue.GobEncode]. It fails outside a child process
// that mp started.
func (q *JoinableQueue[T]) GobDecode(b []byte) error { return q.c.gobDecode(b, true) }
