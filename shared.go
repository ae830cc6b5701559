package mp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"
)

// Synchronization primitives and dictionaries across processes.
//
// Lock, Semaphore, Event, Cond, Barrier and Dict keep their state in the
// process that created them, the owner. One that crosses to a child inside
// a task's argument is encoded as a handle, the number under which the
// owner registered it in stable, and decodes in the child to a proxy that
// asks the owner over the child's connection, as a queue does. On every
// child connection the owner serves those requests through a sharedPeer,
// which stands for the child in the objects' state: a Lock's holder, a
// Semaphore's holders, a Barrier's waiters. When the connection ends —
// the child exited, crashed or was killed — the peer is gone and each
// object it used frees what the child held (see sharedObj.gone).
//
// A blocking request (Lock, Acquire, Wait) runs on a goroutine of the
// owner's and is answered once it is granted. A child whose ctx ends sends
// a cancel for it and still waits for the answer, which says whether the
// request was granted first: a grant is never lost in flight, so a
// cancelled Lock never leaves the lock held by a process that does not
// know it holds it.

// serviceShared is the owner's service for the shared objects.
const serviceShared = "mp.s"

// sopCancel is the operation that cancels a child's blocking request. A
// request's header is [op][uvarint object][uvarint token][op's fields];
// the token names a blocking request for its cancel.
const sopCancel byte = 255

// stable holds the objects this process owns and has handed to children,
// by handle number. An entry stays for the life of the process: a child
// may use its handle at any time.
var stable = struct {
	mu   sync.Mutex
	next uint64
	byID map[uint64]sharedObj
}{byID: map[uint64]sharedObj{}}

// sharedObj is an object as the owner's service sees it.
type sharedObj interface {
	// serve handles a child's request; it must not block (see
	// sharedPeer.block for requests that wait).
	serve(r *sreq)
	// gone releases what p held; p's connection has ended.
	gone(p *sharedPeer)
}

// shareObj registers o and returns its handle number; id is where o keeps
// it, so that o is registered once however often it is encoded.
func shareObj(id *atomic.Uint64, o sharedObj) uint64 {
	if n := id.Load(); n != 0 {
		return n
	}
	stable.mu.Lock()
	defer stable.mu.Unlock()
	if n := id.Load(); n != 0 {
		return n
	}
	stable.next++
	stable.byID[stable.next] = o
	id.Store(stable.next)
	return stable.next
}

// sharedPeer is a child, as the shared objects of its parent see it. The
// nil *sharedPeer is the owner process itself.
type sharedPeer struct {
	ch   *child
	dead atomic.Bool // the connection has ended; set before gone is called

	mu    sync.Mutex
	objs  map[uint64]sharedObj          // the objects the child has used
	waits map[uint64]context.CancelFunc // its blocking requests, by token
}

// pid is the process ID of the peer, this process's for nil.
func (p *sharedPeer) pid() int {
	if p == nil {
		return pidSelf
	}
	return p.ch.pid
}

// pidSelf is this process's ID.
var pidSelf = os.Getpid()

// alive reports whether the peer can still be granted anything.
// The connection's context ends first, then dead is set, then gone runs.
func (p *sharedPeer) alive() bool {
	return p == nil || (!p.dead.Load() && p.ch.conn.Ctx.Err() == nil)
}

func init() {
	parentHooks = append(parentHooks, func(ch *child) {
		p := &sharedPeer{ch: ch, objs: map[uint64]sharedObj{}, waits: map[uint64]context.CancelFunc{}}
		ch.conn.Handle(serviceShared, p.serve)
		ch.conn.OnEnd(p.release)
	})
}

func (p *sharedPeer) serve(req *wire.Request) {
	h := hdrReader{b: req.Msg.Header}
	op := h.byte()
	id := h.uvarint()
	tok := h.uvarint()
	if h.bad {
		p.drop(req, "a shared-object request without an operation")
		return
	}
	if op == sopCancel {
		p.mu.Lock()
		cancel := p.waits[tok]
		p.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		return
	}
	p.mu.Lock()
	o := p.objs[id]
	if o == nil {
		stable.mu.Lock()
		o = stable.byID[id]
		stable.mu.Unlock()
		if o != nil {
			p.objs[id] = o
		}
	}
	p.mu.Unlock()
	if o == nil {
		req.Reply(wire.Message{}, fmt.Errorf("mp: process %d has no shared object %d", p.ch.pid, id))
		return
	}
	o.serve(&sreq{p: p, req: req, op: op, tok: tok, h: h})
}

// sreq is a child's request to a shared object: the operation, the token
// of a blocking request, and the fields after them.
type sreq struct {
	p   *sharedPeer
	req *wire.Request
	op  byte
	tok uint64
	h   hdrReader
}

// reply answers the request.
func (r *sreq) reply(m wire.Message, err error) { r.req.Reply(m, err) }

// bad drops the child for a request it sent malformed.
func (r *sreq) bad(what string) { r.p.drop(r.req, what) }

// replyBool answers a Try operation.
func (r *sreq) replyBool(ok bool) {
	r.reply(wire.Message{Header: []byte{byte(boolField(ok))}}, nil)
}

// replyRelease answers an Unlock or a Release, whose err is the owner's
// refusal. A child sends those as notifications, which no reply can
// reach: the child is dropped instead, with err as the reason.
func (r *sreq) replyRelease(err error) {
	if err != nil && r.req.IsNotification() {
		r.bad(err.Error())
		return
	}
	r.reply(wire.Message{}, err)
}

// block runs fn on a goroutine of the connection and replies with its
// outcome. fn's ctx ends when the child cancels the request or its
// connection ends.
func (r *sreq) block(fn func(ctx context.Context) (wire.Message, error)) {
	p, req, tok := r.p, r.req, r.tok
	ctx, cancel := context.WithCancel(req.Ctx)
	p.mu.Lock()
	p.waits[tok] = cancel
	p.mu.Unlock()
	req.Conn.Go(func() {
		m, err := fn(ctx)
		p.mu.Lock()
		delete(p.waits, tok)
		p.mu.Unlock()
		cancel()
		req.Reply(m, err)
	})
}

// drop fails a child that broke the shared-object protocol: it is killed,
// and its owner reports why, as for a malformed frame. The parent and the
// other processes that use the object are unaffected.
func (p *sharedPeer) drop(req *wire.Request, what string) {
	err := fmt.Errorf("mp: process %d broke the protocol and was killed: %w: %s", p.ch.pid, wire.ErrMalformed, what)
	p.ch.mu.Lock()
	if p.ch.protoErr == nil {
		p.ch.protoErr = err
	}
	p.ch.mu.Unlock()
	// Kill first: a reply written at once could otherwise let the child
	// finish its task, and exit as if nothing were wrong, before the
	// signal.
	_ = p.ch.signal(sigKill)
	req.Reply(wire.Message{}, err)
}

// release runs once the child's connection has ended: every object it
// used frees what it held.
func (p *sharedPeer) release() {
	p.dead.Store(true)
	p.mu.Lock()
	objs := make([]sharedObj, 0, len(p.objs))
	for _, o := range p.objs {
		objs = append(objs, o)
	}
	p.mu.Unlock()
	for _, o := range objs {
		o.gone(p)
	}
}

// errMalformedShared is a child's reply to a request it cannot parse.
var errMalformedShared = errors.New("mp: malformed shared-object request")

// remoteObj is a shared object's proxy in a child: requests to the owner
// over the child's connection to its parent.
// A child has one per object, however many handles of it it decoded, so
// that what it holds is known once: a Lock decoded on its own and as a
// Cond's L is one lock.
type remoteObj struct {
	id uint64
	cn *wire.Conn
	// held is what this process holds: 1 for a held Lock, the units of a
	// Semaphore. A child checks its own Unlock and Release against it.
	held atomic.Int64
}

// remotes holds this child's proxies by object number.
var remotes = struct {
	mu   sync.Mutex
	byID map[uint64]*remoteObj
}{byID: map[uint64]*remoteObj{}}

// tokens numbers the blocking requests of this process.
var tokens atomic.Uint64

func sheader(op byte, id, tok uint64, fields ...uint64) []byte {
	b := make([]byte, 0, 1+10*(2+len(fields)))
	b = append(b, op)
	b = binary.AppendUvarint(b, id)
	b = binary.AppendUvarint(b, tok)
	for _, f := range fields {
		b = binary.AppendUvarint(b, f)
	}
	return b
}

// call is a request that does not wait in the owner.
func (r *remoteObj) call(op byte, raw []byte, fields ...uint64) (wire.Message, error) {
	return r.cn.Call(context.Background(), serviceShared, wire.Message{Header: sheader(op, r.id, 0, fields...), Raw: raw})
}

// notify is a one-way request. The connection keeps order, so the owner
// handles it before any later request of this process.
func (r *remoteObj) notify(op byte, fields ...uint64) {
	// A write error means the connection is broken, which ends this
	// process (the connection is its lifeline).
	_ = r.cn.Notify(serviceShared, wire.Message{Header: sheader(op, r.id, 0, fields...)})
}

// wait is a blocking request. When ctx ends first it asks the owner to
// cancel the request and waits for the answer, which may be a grant that
// came first; cancelled reports that the owner cancelled it.
func (r *remoteObj) wait(ctx context.Context, op byte, raw []byte, fields ...uint64) (m wire.Message, cancelled bool, err error) {
	tok := tokens.Add(1)
	cl, err := r.cn.Start(serviceShared, wire.Message{Header: sheader(op, r.id, tok, fields...), Raw: raw})
	if err != nil {
		return wire.Message{}, false, err
	}
	select {
	case <-cl.Done:
	case <-ctx.Done():
		_ = r.cn.Notify(serviceShared, wire.Message{Header: sheader(sopCancel, r.id, tok)})
		<-cl.Done
	}
	if cl.Err != nil && ctx.Err() != nil && errors.Is(cl.Err, context.Canceled) {
		return wire.Message{}, true, context.Cause(ctx)
	}
	return cl.Reply, false, cl.Err
}

// encodeHandle writes the handle of an object of kind what: its number,
// and typ to check it against the type it decodes to.
func encodeHandle(id uint64, typ string) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, id)
	return append(b, typ...)
}

// decodeHandle parses a handle written by encodeHandle for a what of type
// typ, in a child, and returns its proxy.
func decodeHandle(b []byte, what, typ string) (*remoteObj, error) {
	h := hdrReader{b: b}
	if h.byte() != 1 {
		return nil, fmt.Errorf("mp: bad %s handle", what)
	}
	id := h.uvarint()
	if h.bad {
		return nil, fmt.Errorf("mp: bad %s handle", what)
	}
	if got := string(h.b); got != typ {
		return nil, fmt.Errorf("mp: a handle of a %s cannot be decoded as a %s", got, typ)
	}
	if parentConn == nil {
		return nil, fmt.Errorf("mp: a %s handle can be decoded only in a child process that mp started", what)
	}
	return remoteFor(id), nil
}

// remoteFor returns this child's proxy of object id.
func remoteFor(id uint64) *remoteObj {
	remotes.mu.Lock()
	defer remotes.mu.Unlock()
	r := remotes.byID[id]
	if r == nil {
		// A Process child's connection may not serve yet (see
		// childStream): a proxy needs the owner's replies.
		parentConn.Serve()
		r = &remoteObj{id: id, cn: parentConn}
		remotes.byID[id] = r
	}
	return r
}

// errForwarded is returned when a child tries to pass an object it
// received from its parent on to a child of its own.
func errForwarded(what string) error {
	return fmt.Errorf("mp: a %s received from a parent process cannot be passed on to another process; create it in the process that starts the children", what)
}
