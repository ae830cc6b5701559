package mp

import (
	"context"
	"reflect"
	"sync"

	"github.com/mpgo/mp/backend"
)

// unit is one entry of a Pool's queue, which carries its own result: a
// task of Pool.Go, an ApplyAsync, a chunk of a Map, an item of a MapSeq.
// Every unit but Pool.Go's is also a backend.Task, the form in which a
// remote back-end sends it elsewhere (see seam.go).
type unit interface {
	// run executes the unit on the calling goroutine, under p's context
	// (cancelled with cause ErrTerminated by Terminate) or a narrower one
	// of its own. run reports whether the unit failed.
	run(p *Pool) (failed bool)
	// fail resolves the unit with err without running it.
	fail(p *Pool, err error)
}

// goFunc is the unit of Pool.Go. A func is pointer-shaped, so making it a
// unit allocates nothing.
type goFunc func(ctx context.Context) error

func (f goFunc) run(p *Pool) bool {
	if err := callGo(p.ctx, f); err != nil {
		p.report(err)
		return true
	}
	return false
}

func (goFunc) fail(p *Pool, err error) { p.report(err) }

// goroutines is the back-end of NewPool: every worker is a goroutine that
// runs units in this process, through their run method.
type goroutines struct {
	// slots holds the task context of each worker, indexed as workers.
	slots []taskSlot
}

// Remote reports false: units run here, closures included.
func (g *goroutines) Remote() bool { return false }

// slotUser is a unit that runs under a context of its worker's taskSlot.
type slotUser interface {
	useSlot(s *taskSlot)
}

// Work runs units until the queue is closed and drained. It reaches past
// the backend.Queue to the Pool, which only mp's own back-end may: the
// units run in place, and a goroutine worker counts no start (Stats
// derives the started units from the queue), which keeps a trivial task
// at a few tens of nanoseconds.
func (g *goroutines) Work(i int, q backend.Queue) {
	p := q.(*workerQueue).p
	s := &g.slots[i]
	defer s.release()
	for {
		u, ok := p.next(i)
		if !ok {
			return
		}
		if su, ok := u.(slotUser); ok {
			su.useSlot(s)
		}
		p.exec(i, u)
	}
}

// Terminate cancels the task contexts of the workers with cause
// ErrTerminated. Other goroutine tasks run under the pool's context, which
// Terminate has cancelled; none can be preempted.
func (g *goroutines) Terminate() {
	for i := range g.slots {
		g.slots[i].terminate()
	}
}

// taskSlot is the context under which one goroutine worker runs the tasks
// submitted with a context that can be done. That context derives from the
// caller's, so it is done when the caller's is, and Terminate cancels it
// with cause ErrTerminated through the slot, without an AfterFunc on the
// pool's context.
//
// A worker keeps its context from one task to the next as long as they
// come with the same caller's context: a loop that submits many tasks
// under one request's context then costs no context per task. So the
// context outlives the task that made it, as the pool's own context (which
// tasks submitted with context.Background() get) outlives every task: it
// is released when a task with another context comes, or when the worker
// exits. Since a worker makes it when it starts a task, not at submission,
// there are at most as many of them as workers, however long the queue.
type taskSlot struct {
	// parent is the caller's context that ctx derives from. Only the
	// worker reads and writes it, and ctx.
	parent context.Context
	// reusable reports whether parent can be compared with ==: a context
	// of a struct type with a slice in it would make == panic.
	reusable bool
	ctx      context.Context
	// mu guards cancel, which Terminate calls from another goroutine.
	mu     sync.Mutex
	cancel context.CancelCauseFunc
}

// context returns the context of a task submitted with parent, which can be
// done.
func (s *taskSlot) context(p *Pool, parent context.Context) context.Context {
	// A cached context was cancelled only if its parent is done or the
	// pool terminated: the task fails either way, with the right cause.
	if s.reusable && s.parent == parent {
		return s.ctx
	}
	s.release()
	ctx, cancel := context.WithCancelCause(parent)
	s.mu.Lock()
	s.parent, s.ctx, s.cancel = parent, ctx, cancel
	s.mu.Unlock()
	s.reusable = reflect.TypeOf(parent).Comparable()
	if p.ctx.Err() != nil {
		// Terminate may have passed this slot before cancel was in it.
		cancel(ErrTerminated)
	}
	return ctx
}

// release cancels the slot's context, which detaches it from its parent,
// and empties the slot.
func (s *taskSlot) release() {
	s.mu.Lock()
	cancel := s.cancel
	s.parent, s.ctx, s.cancel = nil, nil, nil
	s.mu.Unlock()
	s.reusable = false
	if cancel != nil {
		cancel(nil)
	}
}

// terminate cancels the slot's context with cause ErrTerminated.
func (s *taskSlot) terminate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel(ErrTerminated)
	}
}
