package mp

import (
	"context"
	"runtime"

	"github.com/mpgo/mp/internal/wire"
)

// A caller of Apply on a process pool with an idle worker runs the task on
// that worker itself, on its own goroutine (runNow); the worker's
// goroutine sleeps meanwhile and is woken only for what the plain case
// does not cover.

// The states of procWorker.lend.
const (
	lendBusy = iota
	lendIdle
	lendLent
	lendWanted
)

// reclaim makes the worker its goroutine's again, after the goroutine
// slept lendable, waiting for a caller that has it to give it back.
func (w *procWorker) reclaim() {
	for {
		switch w.lend.Load() {
		case lendBusy:
			// Given back with things to see to (giveBack's kick).
			return
		case lendIdle:
			if w.lend.CompareAndSwap(lendIdle, lendBusy) {
				return
			}
		case lendLent:
			if w.lend.CompareAndSwap(lendLent, lendWanted) {
				<-w.back
				return
			}
		}
	}
}

// runNow runs t on an idle worker on the calling goroutine, and reports
// whether it could: the analogue of a goroutine pool running Apply's
// task, for a process pool. The caller writes the request itself, reads
// the reply itself (wire.Conn.ReadDirect), and keeps the worker's books,
// so that a call to an idle pool wakes no goroutine in this process: each
// hand-off to another goroutine costs a thread wake-up, more than the
// round trip to the child (BenchmarkProcessPoolApply against
// BenchmarkFloorPingPong). Whatever is not the plain case (the child
// dies, ctx is done, the child retires) is left to the worker's
// goroutine, as if the task had come through the queue.
func (b *procBackend) runNow(t quickCompleter) bool {
	for try := range 2 {
		for i := range b.workers {
			w := b.workers[i].Load()
			if w != nil && w.lend.Load() == lendIdle && w.lend.CompareAndSwap(lendIdle, lendLent) {
				b.callerRuns.Add(1)
				w.runLent(t)
				return true
			}
		}
		if try == 0 {
			// A worker whose goroutine ended a task through the queue
			// is idle once that goroutine has kept its books: let it,
			// so that a caller of Apply right after such a task does not
			// go through the queue too, and the next, and so on.
			runtime.Gosched()
		}
	}
	return false
}

// runLent runs t on the worker, which a caller has taken (runNow).
func (w *procWorker) runLent(t quickCompleter) {
	// Deferred, so that the worker goes back to its goroutine even if
	// the caller's goroutine panics here.
	defer w.giveBack()
	w.take(t, false)
	if len(w.pending) == 1 {
		h := &w.pending[0]
		ctx := h.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		w.ch.conn.ReadDirect(ctx, h.cl.Done)
		if wire.IsClosed(h.cl.Done) && h.resolvedEarly() {
			w.complete()
		}
	}
}

// giveBack gives the worker back to its goroutine, waking it if it waits
// for the worker or if something needs it: a task still running (its
// context ended, or its reply was not read on the caller's goroutine), one
// to send again, or a child to retire or replace. Otherwise the goroutine
// sleeps on, none the wiser.
func (w *procWorker) giveBack() {
	kick := len(w.pending) > 0 || len(w.redo) > 0 || w.retiring || w.ch == nil ||
		wire.IsClosed(w.ch.conn.Broken) || wire.IsClosed(w.ch.done)
	if !kick && w.lend.CompareAndSwap(lendLent, lendIdle) {
		return
	}
	if w.lend.Swap(lendBusy) == lendWanted {
		w.back <- struct{}{}
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}
