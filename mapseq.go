package mp

import (
	"context"
	"iter"

	"github.com/mpgo/mp/internal/wire"

	"github.com/mpgo/mp/backend"
)

// seqState is shared by the items of one MapSeq or MapSeqUnordered loop.
type seqState[A, R any] struct {
	f     Func[A, R]
	ctx   context.Context
	ended chan int // indexes of slots whose task ended; never blocks
	// name is the registered name of f, on a remote pool, and header
	// the same as the header of a run request.
	name   string
	header []byte
}

// seqSlot is the job of one item of a MapSeq loop. Slots are reused, so
// that streaming allocates nothing per item.
type seqSlot[A, R any] struct {
	s   *seqState[A, R]
	i   int
	arg A
	val R
	err error
}

func (j *seqSlot[A, R]) run(*Pool) bool {
	if ctx := j.s.ctx; ctx.Err() != nil {
		j.err = context.Cause(ctx)
	} else {
		j.val, j.err = callTask(ctx, j.s.f, j.arg)
	}
	// The slot belongs to the loop again once sent: read it before.
	failed := j.err != nil
	j.s.ended <- j.i
	return failed
}

func (j *seqSlot[A, R]) fail(_ *Pool, err error) {
	j.err = err
	j.s.ended <- j.i
}

// Request, Context, Complete and Fail make an item of MapSeq a task of a
// remote back-end; requestOn and completeOn, one of mp's process pool.
func (j *seqSlot[A, R]) Request() (backend.Request, error) {
	raw, err := codecFor[A]().as(roleArg).encode(j.arg)
	return backend.Request{Func: j.s.name, Arg: raw}, err
}

func (j *seqSlot[A, R]) Context() context.Context { return j.s.ctx }
func (j *seqSlot[A, R]) Fail(err error)           { j.fail(nil, err) }

func (j *seqSlot[A, R]) Complete(r backend.Reply, err error) bool {
	return j.decode(nil, r.Value, replyError(j.s.ctx, r, err))
}

func (j *seqSlot[A, R]) requestOn(c *wire.Conn, _ []byte) (wire.Message, error) {
	raw, err := codecFor[A]().as(roleArg).encodeOn(c, j.arg)
	return wire.Message{Header: j.s.header, Raw: raw}, err
}

func (j *seqSlot[A, R]) completeOn(c *wire.Conn, reply wire.Message, err error) bool {
	return j.decode(c, reply.Raw, err)
}

// decode resolves the item from an encoded result that arrived on c.
func (j *seqSlot[A, R]) decode(c *wire.Conn, raw []byte, err error) bool {
	if err == nil {
		j.val, err = codecFor[R]().as(roleResult).decodeOn(c, raw)
	}
	j.err = err
	j.s.ended <- j.i
	return err != nil
}

// take returns the slot's outcome and clears it for reuse.
func (j *seqSlot[A, R]) take() (R, error) {
	v, err := j.val, j.err
	var zr R
	var za A
	j.val, j.err, j.arg = zr, nil, za
	return v, err
}

// mapSeq is the body of MapSeq (ordered) and MapSeqUnordered.
func mapSeq[A, R any](ctx context.Context, p *Pool, f Func[A, R], items iter.Seq[A], ordered bool) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		ctx, cancel := context.WithCancelCause(ctx)
		defer context.AfterFunc(p.ctx, func() { cancel(context.Cause(p.ctx)) })()
		// The look-ahead: at most this many items are read ahead of the
		// caller, queued or running.
		window := 2 * p.workers
		s := &seqState[A, R]{f: f, ctx: ctx, ended: make(chan int, window)}
		if p.remote {
			e, err := registered(f)
			if err != nil {
				var zero R
				yield(zero, err)
				return
			}
			s.name, s.header = e.name, e.header
		}
		slots := make([]seqSlot[A, R], window)
		ready := make([]bool, window)
		free := make([]int, 0, window) // unordered: slots not in use
		for i := range slots {
			slots[i] = seqSlot[A, R]{s: s, i: i}
			free = append(free, window-1-i)
		}
		head, count := 0, 0 // ordered: slots in use are head..head+count-1
		inflight := 0       // slots whose end has not been received
		// Breaking out of the loop, or a panic in it, cancels what is
		// outstanding and waits for it, so that no task outlives the loop.
		defer func() {
			cancel(nil)
			for ; inflight > 0; inflight-- {
				<-s.ended
			}
		}()
		receive := func() int {
			i := <-s.ended
			inflight--
			ready[i] = true
			return i
		}
		// emit yields one outcome, waiting for it if needed.
		emit := func() bool {
			var i int
			if ordered {
				i = head
				for !ready[i] {
					receive()
				}
				head = (head + 1) % window
				count--
			} else {
				i = receive()
				free = append(free, i)
			}
			ready[i] = false
			return yield(slots[i].take())
		}
		for item := range items {
			if (ordered && count == window) || (!ordered && len(free) == 0) {
				if !emit() {
					return
				}
			}
			var i int
			if ordered {
				i = (head + count) % window
				count++
			} else {
				i = free[len(free)-1]
				free = free[:len(free)-1]
			}
			slots[i].arg = item
			inflight++
			if err := p.submit(ctx, &slots[i]); err != nil {
				// The pool is closed or ctx is done: every later item would
				// fail the same way, so the sequence ends after this one.
				slots[i].fail(p, err)
				break
			}
		}
		for (ordered && count > 0) || (!ordered && inflight > 0) {
			if !emit() {
				return
			}
		}
	}
}

// MapSeq applies f to every item on the pool's workers and yields the
// results in the order of items, as they become available: the analogue of
// Python's Pool.imap and Executor.map. It yields (result, err) for each
// item and goes on after an error until the caller breaks out of the loop;
// a panic in f yields a *[PanicError] for that item.
//
// MapSeq never reads the whole input first: at most 2×workers items are
// read ahead of the loop, queued or running. Each item is one task.
// Breaking out of the loop cancels the context of the tasks still
// outstanding and waits for them to return before the loop ends, so no
// task outlives it. Their errors are not reported anywhere: the caller
// stopped listening. When ctx is done or the pool is closed or terminated,
// the item being submitted yields that error and the sequence ends after
// the items already submitted.
//
// The sequence may be ranged over several times; each range runs the tasks
// again. Streaming allocates nothing per item.
func MapSeq[A, R any](ctx context.Context, p *Pool, f Func[A, R], items iter.Seq[A]) iter.Seq2[R, error] {
	return mapSeq(ctx, p, f, items, true)
}

// MapSeqUnordered is like [MapSeq] but yields the results in the order the
// tasks end: the analogue of Python's Pool.imap_unordered and
// concurrent.futures.as_completed. A result carries no index; return one
// from f if the caller needs to know which item it came from.
func MapSeqUnordered[A, R any](ctx context.Context, p *Pool, f Func[A, R], items iter.Seq[A]) iter.Seq2[R, error] {
	return mapSeq(ctx, p, f, items, false)
}
