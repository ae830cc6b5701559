package mp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"

	"github.com/mpgo/mp/internal/wire"
)

// Queues across processes.
//
// A queue that crosses to a child inside a task's argument is encoded as a
// handle: the number under which its owner registered it. In the child the
// handle decodes to a queue served by an xproxy talking to the owner over
// the child's connection. The owner keeps the state: its xstate wraps the
// local queue, and a broker on every child connection serves the
// children's requests.
//
// Gets are prefetched: a child grants its broker credit for a number of
// items (a window that starts at one and doubles each time a Get finds
// the child's buffer empty with credit outstanding), and a feeder
// goroutine per child and queue sends items in batches as credit allows
// (see the tables below). Every item sent to a child is
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
//
// # Files
//
// xqueue.go holds this overview, the operations and the handles;
// xqueue_owner.go the owner's state (xstate: redelivery, ErrLost);
// xqueue_broker.go the broker, one per child, with a holder and a feeder
// per queue that child uses; xqueue_proxy.go the child's side (xproxy).
//
// # Credit, revoke and hand-back
//
// Per child and queue, the owner's holder keeps credit, the items the
// child asked for and has not been sent, and held, the items sent to the
// child and not yet retired, in the order sent, which is the order of the
// child's Gets. The child's xproxy keeps a window (how far ahead to ask),
// its own count of the credit it granted and has not received, and a
// buffer of items received and not yet got.
//
// An item, as the owner sees it ("n" is how often it was delivered):
//
//	from      | event                                        | to          | where
//	----------+----------------------------------------------+-------------+------------------------------------
//	queued    | a feeder takes it, within credit             | sent        | holder.fill, holder.send
//	queued    | a child's TryGet finds its buffer empty      | got         | holder.tryGet (held if joinable)
//	sent      | the child's Get returns it                   | got         | xproxy.popLocked
//	sent      | the child hands its unread buffer back       | queued      | xopAck returned: holder.ack,
//	          |   (it gave up its credit: revoke)            |   (first)   |   requeue(count=false), n unchanged
//	got       | Queue: the child reports it got              | retired     | xopAck got: holder.ack
//	got       | JoinableQueue: the child marks it done       | retired     | xopAck done: holder.ack, taskDoneN
//	sent, got | the child's connection ends, n < limit       | queued      | holder.release, requeue(count=true)
//	          |                                              |   (first)   |
//	sent, got | the child's connection ends, n = limit       | lost        | requeue: Join's ErrLost, finish
//	any held  | CloseNow was called                          | discarded   | xstate.close, requeue, finish
//
// A child's credit, as the owner's holder counts it:
//
//	from   | event                                              | to                     | where
//	-------+----------------------------------------------------+------------------------+---------------------------
//	c      | xopAck want=w: a Get found the buffer short of the | c+w, feeder started or | xproxy.askLocked,
//	       |   window                                           |   woken                |   holder.ack
//	c > 0  | the feeder sends a batch of k <= c items           | c-k                    | holder.send
//	any    | xopRevoke: the last waiting Get gave up, or the    | 0, the feeder's wait   | xproxy.giveUp, flush;
//	       |   task ended                                       |   for an item ends     |   holder.revoke
//	any    | the queue is closed and drained                    | 0, xopClosed sent      | holder.tellClosed
//
// Why it works this way:
//   - Credit, not a push: the owner sends a child only what it asked for,
//     so a slow consumer is not flooded and items do not sit in a child
//     that will not get them while others wait. The window starts at one
//     item and doubles each time a Get starves with credit outstanding, so
//     a fast consumer soon has a batch in flight per round trip
//     (maxWindow items or maxBuffered bytes at most).
//   - Held until retired: an item stays in held until the child reports
//     it got (Queue) or done (JoinableQueue), so that if the child dies
//     the item is delivered again (at-least-once). The owner retires by
//     count, oldest first: TaskDone does not name its item, in Python
//     either, so after a death the items requeued are the newest ones
//     held, which for a consumer that finishes in order are the unfinished.
//   - Gets are reported in batches (when the buffer runs dry or half the
//     window was got), since a lost report only means a redelivery; a
//     TaskDone is reported at once, since an item marked done must never
//     be counted lost.
//   - Revoke and hand-back: a pool worker's connection outlives its task,
//     so when a task ends (flush) its prefetched items must go back to the
//     queue, or other consumers would wait while they sit in an idle
//     process. The proxy hands them back by count: the owner requeues the
//     newest "returned" items of held. That is exact only if no item is on
//     its way, so the proxy first sends a revoke as a call: the owner drops
//     the credit, so the feeder sends nothing more, and answers only once
//     the feeder has queued the batch it may be sending (holder.sending).
//     The connection keeps order, so the answer arrives after every item
//     sent before it. Items handed back were never got: the delivery does
//     not count against the limit.
//   - A Get that gives up (ctx done) revokes without waiting for an answer:
//     the items already on their way are buffered for the next Get, or
//     handed back when the task ends.
//   - Pulled items (Linux): a socket copies a large item twice, into the
//     kernel and out of it. A []byte or string item of largeItem bytes or
//     more, sent alone, instead stays where it is in the owner's memory,
//     which is the item's own (encodeFixed copies nothing), and the owner
//     sends its address (xopItemsAt); the child reads it with one copy
//     (wire.Pull, process_vm_readv). The item is held, so reachable and in
//     place, until the child reports it got or done, which is after the
//     read. A child pulls only from an owner that offered it (a handle
//     carries the address of pullProbe, or 0) and only once it has read
//     pullProbe there: the same user, no Yama or seccomp restriction. It
//     says so in every xopAck (ackPull), and the owner sends addresses
//     only to a child that said so. Otherwise items travel in the socket.

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
	xopAck                        // notify [uvarint got][uvarint done][uvarint want][uvarint returned][uvarint flags]
	xopRevoke                     // notify: no more items for now
	xopLen                        // reply header: uvarint length
	xopClose                      // [u8 immediate]
	xopJoin                       // reply when the queue is idle
	xopItems                      // owner → child notify [uvarint n][n × uvarint len], raw: the items
	xopClosed                     // owner → child notify [u8 immediate]
	xopPutsClosed                 // owner → child notify: the queue refuses Puts from now on
	xopItemsAt                    // owner → child notify [uvarint len][uvarint address]: one item to pull
)

// ackPull is the xopAck flag by which a child says that it can pull items
// from the owner's memory (see "Pulled items" above).
const ackPull = 1

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

// gobEncode writes the handle of the queue: [1][uvarint id][varint
// maxsize][uvarint pull][u8 joinable][the item type's name], where pull
// is the address of pullProbe, or 0 when the owner sends no item by
// address. In the owner it shares the queue; in a child it refuses, since
// the handle names a queue of the parent that a grandchild cannot reach.
func (c *core[T]) gobEncode(joinable bool) ([]byte, error) {
	x, err := c.share(joinable)
	if err != nil {
		return nil, err
	}
	b := []byte{1}
	b = binary.AppendUvarint(b, x.id)
	b = binary.AppendVarint(b, int64(c.local.maxsize))
	b = binary.AppendUvarint(b, pullOffer())
	b = append(b, byte(boolField(joinable)))
	return append(b, reflect.TypeFor[T]().String()...), nil
}

// gobDecode makes c, a fresh queue, the proxy of the handle b. The kind
// and the item type are checked, so that a handle decoded into the wrong
// Go type fails here rather than as garbled items later.
func (c *core[T]) gobDecode(b []byte, joinable bool) error {
	what := kindName(joinable)
	h := hdrReader{b: b}
	if h.byte() != 1 {
		return fmt.Errorf("mp: bad %s handle", what)
	}
	id := h.uvarint()
	maxsize, n := binary.Varint(h.b)
	if h.bad || n <= 0 {
		return fmt.Errorf("mp: bad %s handle", what)
	}
	h.b = h.b[n:]
	pull := h.uvarint()
	if h.bad || len(h.b) < 1 {
		return fmt.Errorf("mp: bad %s handle", what)
	}
	j := h.b[0] == 1
	typ := string(h.b[1:])
	if j != joinable {
		return fmt.Errorf("mp: a handle of a %s cannot be decoded as a %s", kindName(j), what)
	}
	if want := reflect.TypeFor[T]().String(); typ != want {
		return fmt.Errorf("mp: a handle of a %s[%s] cannot be decoded as a %s[%s]", what, typ, what, want)
	}
	if parentConn == nil {
		return fmt.Errorf("mp: a %s handle can be decoded only in a child process that mp started", what)
	}
	if c.remote.Load() != nil {
		return fmt.Errorf("mp: GobDecode into a %s already in use", what)
	}
	var impl queueImpl[T] = proxyFor[T](parentConn, id, joinable, int(maxsize), pull)
	c.remote.Store(&impl)
	return nil
}

// kindName names the public type of a queue, for errors.
func kindName(joinable bool) string {
	if joinable {
		return "JoinableQueue"
	}
	return "Queue"
}

func init() {
	parentHooks = append(parentHooks, func(ch *child) {
		b := &broker{cn: ch.conn, pid: ch.pid, holders: map[uint64]xholder{}, kill: func(err error) {
			ch.dropForProtocol(fmt.Errorf("mp: process %d broke the protocol and was killed: %w", ch.pid, err))
		}}
		ch.conn.Handle(serviceQueue, b.serve)
		ch.conn.OnEnd(b.release)
	})
	childHooks = append(childHooks, func(c *wire.Conn, _ bool) {
		c.Handle(serviceQueueChild, proxies.serve)
	})
	childRunDone = append(childRunDone, proxies.flushAll)
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
func (q *Queue[T]) GobEncode() ([]byte, error) { return q.gobEncode(false) }

// GobDecode makes q, a new Queue, the child's side of a handle written by
// [Queue.GobEncode]. It fails outside a child process that mp started.
func (q *Queue[T]) GobDecode(b []byte) error { return q.gobDecode(b, false) }

// GobEncode encodes the queue as a handle, so that a *JoinableQueue inside
// a task's argument crosses to a child process, as [Queue.GobEncode] does;
// it is the Go twin of passing a multiprocessing.JoinableQueue in
// Process(args=...).
func (q *JoinableQueue[T]) GobEncode() ([]byte, error) { return q.gobEncode(true) }

// GobDecode makes q, a new JoinableQueue, the child's side of a handle
// written by [JoinableQueue.GobEncode]. It fails outside a child process
// that mp started.
func (q *JoinableQueue[T]) GobDecode(b []byte) error { return q.gobDecode(b, true) }
