package mp

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/backend"
	"github.com/mpgo/mp/internal/wire"
)

// inflight is a unit sent to a worker and not yet resolved.
type inflight struct {
	t         streamTask
	cl        *wire.Call
	ctx       context.Context
	sent      time.Time
	cancelled bool         // the child was asked to cancel it
	early     *earlyResult // set for a unit resolved as its reply arrives
}

// earlyResult resolves a unit on the connection's reader goroutine as its
// reply arrives: the reply then wakes the caller waiting for it directly,
// one goroutine hand-off, rather than through the worker goroutine, two.
// On a machine with an idle processor each hand-off costs the runtime a
// thread wake-up, which is most of what a round trip to a child costs
// beyond the wire. The worker, woken by the call's Done after, only keeps
// its books.
type earlyResult struct {
	t        quickCompleter
	ctx      context.Context
	q        backend.Queue
	resolved bool // set before Done is closed, read by the worker after
}

// maxEarlyReply is the largest reply decoded on the reader goroutine: a
// larger one would hold up the replies and requests behind it.
const maxEarlyReply = 16 << 10

func (e *earlyResult) OnReply(cl *wire.Call) {
	if len(cl.Reply.Raw) > maxEarlyReply || errors.Is(cl.Err, wire.ErrConnLost) {
		return
	}
	err := cl.Err
	if err != nil && e.ctx != nil && e.ctx.Err() != nil {
		// The child stopped the task because its context ended here.
		err = context.Cause(e.ctx)
	}
	e.q.Ended(e.t.decodeReply(cl.Conn(), cl.Reply, err))
	e.t.resolveReply()
	e.resolved = true
}

// procWorker is the state of one worker goroutine and its child. Only
// that goroutine touches it.
type procWorker struct {
	b  *procBackend
	q  backend.Queue
	i  int
	ch *child
	// open reports whether the queue may still hold tasks.
	open bool

	pending  []inflight // in the order sent, which is the order run
	buf      []byte     // scratch space for encoding requests
	hdr      []byte     // scratch space for a marked request header
	redo     []streamTask
	attempts map[streamTask]int
	tasks    int  // units sent to ch
	retiring bool // ch has run its MaxTasksPerChild
	window   int  // how many units may be in flight now
	lastEnd  time.Time
	spawnErr error

	grace     *time.Timer
	preempted bool
	// spareEarly holds earlyResults the worker is done with, for reuse.
	spareEarly []*earlyResult

	// lend is who has the worker: its goroutine (lendBusy), nobody while
	// its goroutine sleeps idle and a caller may take it (lendIdle), or
	// a caller (lendLent, lendWanted once the goroutine waits for it).
	// The worker's fields belong to whoever has it. back gives it back
	// to a goroutine that waits for it; kick wakes a sleeping goroutine
	// that has things to see to.
	lend atomic.Int32
	back chan struct{}
	kick chan struct{}
}

// pipelineBudget is how much work, by the parent-observed run time of
// the last unit, a worker is sent ahead.
const pipelineBudget = 2 * time.Millisecond

// Work is the body of worker i: it keeps a child process running, sends
// it the tasks it takes from q, several in flight, and resolves each from
// the child's reply, or from the child's death.
func (b *procBackend) Work(i int, q backend.Queue) {
	w := &procWorker{b: b, q: q, i: i, attempts: map[streamTask]int{}, window: 1, open: true,
		back: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
	w.grace = time.NewTimer(time.Hour)
	w.grace.Stop()
	b.workers[i].Store(w)
	defer b.workers[i].Store(nil)
	defer w.shutdown()
	for {
		if q.Terminated() {
			w.terminated()
			return
		}
		w.refill()
		wake, again := w.takeQueued()
		if again {
			continue
		}
		if len(w.pending) == 0 {
			if w.retiring {
				if wake != nil {
					q.Unsleep()
				}
				w.retire()
				continue
			}
			if !w.open && len(w.redo) == 0 {
				return
			}
		}
		w.awaitEvent(wake)
	}
}

// refill replaces a missing child eagerly, so that a task finds a worker
// ready, unless the queue is drained and nothing is left to run; then it
// sends the tasks kept from a child that died, or fails them if no child
// can be had.
func (w *procWorker) refill() {
	if w.ch == nil && w.b.failure() == nil && ((w.spawnErr == nil && w.open) || len(w.redo) > 0) {
		w.spawn()
	}
	if w.ch == nil && len(w.redo) > 0 {
		err := w.unavailable()
		for _, t := range w.redo {
			w.count(t, err)
		}
		w.redo = nil
	}
	for len(w.redo) > 0 && w.ch != nil && !w.retiring && len(w.pending) < w.window {
		t := w.redo[0]
		w.redo = w.redo[1:]
		if !w.send(t, false) {
			break
		}
	}
}

// takeQueued sends what is queued, as much as the window allows, and
// reports again: the loop should go round at once. When the queue is
// empty, the worker sleeps as an idle goroutine worker does, and
// takeQueued returns the channel that wakes it, for awaitEvent to wait on
// together with the replies and the child's death.
func (w *procWorker) takeQueued() (wake <-chan struct{}, again bool) {
	if !w.open || len(w.redo) > 0 || (w.ch != nil && (w.retiring || len(w.pending) >= w.window)) {
		return nil, false
	}
	t, r := w.q.TryNext()
	if r == backend.Empty {
		wake = w.q.Sleep()
		// Look at the queue a last time, as Queue.Sleep asks.
		if t, r = w.q.TryNext(); r == backend.Empty {
			return wake, false
		}
		w.q.Unsleep()
	}
	switch r {
	case backend.Drained:
		w.open = false
	case backend.Took:
		// Each task is sent knowing whether another follows at once, so
		// that a burst goes out in one write while a lone task is written
		// straight away (see wire.Writer.QueueFrame).
		for {
			var next backend.Task
			if w.canFollow() {
				if u, r := w.q.TryNext(); r == backend.Took {
					next = u
				}
			}
			w.take(t, next != nil)
			if next == nil {
				break
			}
			t = next
		}
	}
	return nil, true
}

// canFollow reports whether a task may be sent right after the one about
// to be sent: the child will have room in its window and will not have
// run its MaxTasksPerChild.
func (w *procWorker) canFollow() bool {
	m := w.b.cfg.maxTasks
	return w.ch != nil && !w.retiring && len(w.pending)+1 < w.window &&
		(m <= 0 || w.tasks+1 < m) && !w.q.Terminated()
}

// awaitEvent waits for the next thing that concerns the worker: a wake-up
// from the queue, the reply to the task at the head, the end of that
// task's context, the end of its grace period, or the child's death.
func (w *procWorker) awaitEvent(wake <-chan struct{}) {
	var headDone, ctxDone, chDone, broken <-chan struct{}
	if len(w.pending) > 0 {
		h := &w.pending[0]
		headDone = h.cl.Done
		if h.ctx != nil && !h.cancelled {
			ctxDone = h.ctx.Done()
		}
	}
	if w.ch != nil {
		chDone, broken = w.ch.done, w.ch.conn.Broken
	}
	// An idle worker with a live child may be taken by a caller of Apply
	// while its goroutine sleeps (see runNow).
	lendable := wake != nil && w.ch != nil && len(w.pending) == 0 && len(w.redo) == 0 && !w.retiring
	if lendable {
		w.lend.Store(lendIdle)
	}
	select {
	case <-wake:
		if lendable {
			w.reclaim()
		}
		// The waker counted this worker as waking; the next round takes
		// the task.
		w.q.Woke()
		return
	case <-w.kick:
		// A caller that had the worker left it things to see to, or an
		// older kick: either way the next round sees to what there is.
		if lendable {
			w.reclaim()
		}
		if wake != nil {
			w.q.Unsleep()
		}
		return
	case <-chDone:
		if lendable {
			w.reclaim()
		}
		w.died()
	case <-broken:
		if lendable {
			w.reclaim()
		}
		w.died()
	case <-headDone:
		w.complete()
		// Resolve the replies that arrived with it.
		for w.ch != nil && len(w.pending) > 0 && wire.IsClosed(w.pending[0].cl.Done) {
			w.complete()
		}
	case <-ctxDone:
		h := &w.pending[0]
		h.cancelled = true
		_ = h.cl.Cancel()
		w.grace.Reset(w.b.cfg.grace)
	case <-w.grace.C:
		w.preempted = true
		w.ch.signal(sigKill)
		w.died()
	}
	if wake != nil {
		w.q.Unsleep()
	}
}

// count resolves t with err without sending it, and counts it.
func (w *procWorker) count(t backend.Task, err error) {
	w.q.Started()
	w.q.Ended(true)
	t.Fail(err)
}

// unavailable says why the worker has no child.
func (w *procWorker) unavailable() error {
	if err := w.b.failure(); err != nil {
		return err
	}
	return w.spawnErr
}

// take handles a task from the queue; more says that another follows at
// once.
func (w *procWorker) take(t backend.Task, more bool) {
	if w.q.Terminated() {
		w.count(t, ErrTerminated)
		return
	}
	st, ok := t.(streamTask)
	if !ok {
		// Every unit of a Pool is one; this is for a unit added without.
		w.count(t, fmt.Errorf("mp: a process pool cannot send a task of type %T", t))
		return
	}
	if w.ch == nil && w.b.failure() == nil {
		// The last start failed: try again, so that a passing problem
		// does not fail the pool for good.
		w.spawn()
	}
	if w.ch == nil {
		w.count(st, w.unavailable())
		return
	}
	w.send(st, more)
}

// send starts t on the child; more says that another task follows at once.
// It reports false, keeping t for the next child, if the child is gone;
// the death is handled by the caller's next select.
func (w *procWorker) send(t streamTask, more bool) bool {
	c := w.ch.conn
	if wire.IsClosed(c.Broken) || wire.IsClosed(w.ch.done) {
		w.redo = append([]streamTask{t}, w.redo...)
		return false
	}
	ctx := t.Context()
	msg, err := t.requestOn(c, w.buf[:0])
	if err == nil && ctx != nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		w.count(t, err)
		return true
	}
	if w.lend.Load() == lendLent {
		// Its caller waits for the reply itself (runNow), and may well
		// send the next task as soon as it has it: the child may poll
		// for that (see serveChild). The header is copied, as it is the
		// task's; the frame is copied before StartHooked returns.
		w.hdr = append(append(w.hdr[:0], msg.Header...), syncMark...)
		msg.Header = w.hdr
	}
	var early *earlyResult
	if qt, ok := t.(quickCompleter); ok {
		early = w.newEarly(qt, ctx)
	}
	// The task counts as started before it is sent: its reply may be
	// counted as soon as it is (see earlyResult).
	w.q.Started()
	cl, err := c.StartHooked(serviceRun, msg, hookOf(early), more)
	if errors.Is(err, wire.ErrConnLost) {
		// The child is gone; the task has not started.
		w.q.Unstarted()
		w.redo = append([]streamTask{t}, w.redo...)
		return false
	}
	if err != nil {
		w.q.Unstarted()
		w.count(t, err)
		return true
	}
	if cap(msg.Raw) > cap(w.buf) && cap(msg.Raw) <= 64<<10 {
		w.buf = msg.Raw[:0]
	}
	w.pending = append(w.pending, inflight{t: t, cl: cl, ctx: ctx, sent: time.Now(), early: early})
	w.tasks++
	if m := w.b.cfg.maxTasks; m > 0 && w.tasks >= m {
		w.retiring = true
	}
	return true
}

// newEarly returns an earlyResult for t, reusing one if it can.
func (w *procWorker) newEarly(t quickCompleter, ctx context.Context) *earlyResult {
	if n := len(w.spareEarly); n > 0 {
		e := w.spareEarly[n-1]
		w.spareEarly = w.spareEarly[:n-1]
		*e = earlyResult{t: t, ctx: ctx, q: w.q}
		return e
	}
	return &earlyResult{t: t, ctx: ctx, q: w.q}
}

// doneWith keeps h's earlyResult for reuse, once h's call has ended: the
// reader goroutine no longer touches it then.
func (w *procWorker) doneWith(h *inflight) {
	if h.early != nil && wire.IsClosed(h.cl.Done) && len(w.spareEarly) < 256 {
		*h.early = earlyResult{}
		w.spareEarly = append(w.spareEarly, h.early)
	}
}

// hookOf returns e as the reply hook of a call, or none for nil.
func hookOf(e *earlyResult) wire.ReplyHook {
	if e == nil {
		return nil
	}
	return e
}

// complete resolves the unit at the head, whose call has ended.
func (w *procWorker) complete() {
	h := w.pending[0]
	if !h.resolvedEarly() && errors.Is(h.cl.Err, wire.ErrConnLost) {
		w.died()
		return
	}
	w.pending[0] = inflight{}
	if len(w.pending) == 1 {
		// Start again at the front of the array, which sequential calls,
		// one in flight at a time, then never outgrow.
		w.pending = w.pending[:0]
	} else {
		w.pending = w.pending[1:]
	}
	if h.cancelled {
		w.grace.Stop()
	}
	now := time.Now()
	start := h.sent
	if w.lastEnd.After(start) {
		start = w.lastEnd
	}
	w.lastEnd = now
	// Keep about pipelineBudget of work queued in the child: enough to
	// hide the round trip for tiny tasks, little enough that a task does
	// not wait long behind others while another worker is free.
	w.window = w.b.cfg.window
	if d := now.Sub(start); d > 0 && int64(d) > int64(pipelineBudget)/int64(w.window) {
		w.window = max(1, int(pipelineBudget/d))
	}
	early := h.resolvedEarly()
	w.doneWith(&h)
	if early {
		delete(w.attempts, h.t)
		return
	}
	err := h.cl.Err
	if err != nil && h.ctx != nil && h.ctx.Err() != nil {
		// The child stopped the task because its context ended here.
		err = context.Cause(h.ctx)
	}
	w.resolve(h.t, h.cl.Reply, err)
}

// resolvedEarly reports whether the unit was resolved as its reply
// arrived. Only the worker calls it, once the call's Done is closed.
func (h *inflight) resolvedEarly() bool {
	return h.early != nil && wire.IsClosed(h.cl.Done) && h.early.resolved
}

func (w *procWorker) resolve(t streamTask, reply wire.Message, err error) {
	delete(w.attempts, t)
	if qt, ok := t.(quickCompleter); ok {
		// Counted before its caller can see it, as in earlyResult.
		w.q.Ended(qt.decodeReply(w.ch.conn, reply, err))
		qt.resolveReply()
		return
	}
	w.q.Ended(t.completeOn(w.ch.conn, reply, err))
}

// died handles the end of the child: it resolves the units whose replies
// arrived, fails (or retries) the one that was running, and keeps the
// ones behind it, which never started, for the next child.
func (w *procWorker) died() {
	ch := w.ch
	select {
	case <-ch.conn.Broken:
	case <-time.After(time.Second):
		// The child is gone but something holds its socket open; what
		// it sent before dying has been read by now.
	}
	ch.signal(sigKill)
	<-ch.done
	ch.conn.Close()
	w.grace.Stop()
	exit := ch.endError()
	var redo []streamTask
	running := true
	for _, h := range w.pending {
		switch {
		case h.resolvedEarly():
			delete(w.attempts, h.t)
		case !errors.Is(h.cl.Err, wire.ErrConnLost):
			w.resolve(h.t, h.cl.Reply, h.cl.Err)
		case !running:
			redo = append(redo, h.t)
			w.q.Unstarted()
		default:
			running = false
			switch {
			case w.q.Terminated():
				w.resolve(h.t, wire.Message{}, ErrTerminated)
			case w.preempted && h.ctx != nil:
				w.resolve(h.t, wire.Message{}, context.Cause(h.ctx))
			case w.attempts[h.t] < w.b.cfg.retry:
				w.attempts[h.t]++
				redo = append(redo, h.t)
				w.q.Unstarted()
			default:
				w.resolve(h.t, wire.Message{}, exit)
			}
		}
	}
	w.redo = append(redo, w.redo...)
	w.pending, w.preempted = nil, false
	w.drop()
}

// drop forgets the child, which has been reaped.
func (w *procWorker) drop() {
	w.ch = nil
	w.tasks, w.retiring, w.window = 0, false, 1
	w.b.setKid(w.i, nil)
}

// retire closes the connection of a child that has run its
// MaxTasksPerChild and has nothing in flight; the child exits on EOF.
func (w *procWorker) retire() {
	w.closeChild()
	w.drop()
}

// closeChild closes the connection to the child and waits until it has
// exited and been reaped, killing it if it does not exit within a second.
func (w *procWorker) closeChild() {
	ch := w.ch
	ch.conn.Close()
	select {
	case <-ch.done:
	case <-time.After(time.Second):
		ch.signal(sigKill)
		<-ch.done
	}
}

// spawn starts the worker's child and runs the initializer in it.
func (w *procWorker) spawn() {
	b := w.b
	o := spawnOptions{
		name:   fmt.Sprintf("PoolWorker-%d", b.names.Add(1)),
		env:    b.env,
		worker: true,
		first:  b.cfg.init,
	}
	ch, err := spawn(o)
	w.spawnErr = err
	if err != nil {
		return
	}
	if !b.setKid(w.i, ch) {
		<-ch.done
		ch.conn.Close()
		b.setKid(w.i, nil)
		return
	}
	w.ch = ch
	if ch.first == nil {
		return
	}
	if _, err := ch.await(ch.first); err != nil {
		if errors.Is(err, wire.ErrConnLost) {
			err = ch.exitError()
		}
		b.mu.Lock()
		if b.failed == nil {
			b.failed = fmt.Errorf("mp: process pool initializer failed in worker %d: %w", ch.pid, err)
		}
		b.mu.Unlock()
		w.closeChild()
		w.drop()
	}
}

// terminated resolves everything the worker holds or can still take with
// ErrTerminated, after Terminate has killed its child.
func (w *procWorker) terminated() {
	if w.ch != nil {
		w.ch.signal(sigKill)
		w.died()
	}
	for _, t := range w.redo {
		w.count(t, ErrTerminated)
	}
	w.redo = nil
	if w.open {
		for t, ok := w.q.Next(); ok; t, ok = w.q.Next() {
			w.count(t, ErrTerminated)
		}
	}
}

// shutdown ends the child, if any, when the worker goroutine returns.
func (w *procWorker) shutdown() {
	w.grace.Stop()
	if w.ch != nil {
		w.closeChild()
		w.drop()
	}
}
