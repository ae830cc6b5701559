package mp

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// NewProcessPool returns a pool of workers long-lived child processes: the
// analogue of Python's multiprocessing.Pool(workers) and
// ProcessPoolExecutor. NewProcessPool(0) uses runtime.NumCPU() workers; a
// negative count panics. The pool is the same *[Pool] that [NewPool]
// returns, used with the same functions: [Map], [MapSeq],
// [MapSeqUnordered], [Apply], [ApplyAsync], [Pool.Close],
// [Pool.Terminate], [Pool.Join] and [Pool.Stats].
//
// Every worker is a fresh run of this program (see [Main]), started when
// the pool is created, that runs the tasks it is sent one at a time. A
// task must therefore be registered with [Register]: a function that is
// not fails at once with [ErrNotRegistered] naming it, and an argument that
// cannot be encoded fails at once with the encoder's error, in the caller
// ([Map] returns the error; the result of [ApplyAsync] is already resolved
// with it; [MapSeq] yields it once and ends). [Pool.Go] takes a closure,
// which cannot cross to a process; on a process pool it returns an error
// wrapping ErrNotRegistered.
//
// Tiny tasks are cheap: [Map] sends a chunk of items (see [ChunkSize]) as
// one message that the worker runs as a loop, and several tasks are in
// flight to each worker at once (see [Pipeline]), so that a task does not
// pay a round trip to the child. A trivial task costs about 2 µs with
// ApplyAsync+Get, an item of Map about 0.1 µs with automatic chunking and
// 2 µs with ChunkSize(1); a lone Apply, which waits for the round trip,
// takes tens of microseconds (BenchmarkProcessPoolApplyAsync,
// BenchmarkProcessPoolMap, BenchmarkProcessPoolApply).
//
// A process pool keeps its promises when workers die, where Python's Pool
// hangs (gh-66587) and ProcessPoolExecutor breaks:
//
//   - A worker that exits or is killed is noticed at once, by the end of
//     its connection and by its exit status. The task it was running fails
//     with an *[ExitError] naming the pid and the exit code (−9 for
//     SIGKILL), or runs again on a fresh worker if [Retry] allows; tasks
//     queued behind it had not started and run on the replacement. The
//     worker is replaced and the pool goes on.
//   - Deadlines preempt: a task whose context is done and that has not
//     returned a short grace period later (see [Grace]) is killed with its
//     worker, which is replaced, and fails with context.Cause of its
//     context. Goroutines cannot be preempted; processes can.
//   - [Pool.Terminate] kills the workers: running tasks and queued ones
//     resolve with [ErrTerminated] at once.
//   - [Pool.Close] and [Pool.Join] let the queued tasks run, then close
//     the workers' connections; each worker exits, and Join returns once
//     every worker has been reaped, leaving no process, goroutine or file
//     descriptor behind.
//
// Workers ignore SIGINT: the parent owns cancellation, so a Ctrl-C stops
// the program cleanly instead of spraying every worker's traceback as
// Python's do; when the parent dies, its workers die with it.
//
// Each worker is served in the parent by one goroutine, besides its
// connection's reader and writer and the goroutine that reaps it; they
// live until the pool has been closed and drained, or terminated, and the
// child has been reaped. In [Pool.Stats], Running counts the tasks sent
// to workers and not yet resolved, including those pipelined behind the
// one a worker is running.
//
// On Windows the pool builds, but its workers cannot start: every task
// fails with an error wrapping [errors.ErrUnsupported].
func NewProcessPool(workers int, opts ...ProcessOption) *Pool {
	if workers < 0 {
		panic("mp: negative worker count")
	}
	if workers == 0 {
		workers = runtime.NumCPU()
	}
	c := configure(workers, opts)
	b := &procBackend{cfg: c.proc, kids: make([]*child, workers), workers: make([]atomic.Pointer[procWorker], workers)}
	b.failed = c.proc.initErr
	if b.cfg.gomaxprocs < 0 {
		// Workers that outnumber the cores gain nothing from parallel
		// garbage collection and scheduling of their own, and lose to the
		// contention; one thread each measures faster then.
		b.cfg.gomaxprocs = 0
		if workers >= runtime.NumCPU() {
			b.cfg.gomaxprocs = 1
		}
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set && b.cfg.gomaxprocs > 0 {
		b.env = []string{"GOMAXPROCS=" + strconv.Itoa(b.cfg.gomaxprocs)}
	}
	return newPool(workers, b, c)
}

// procBackend runs units in child processes, one per worker goroutine.
type procBackend struct {
	cfg procConfig
	env []string

	mu         sync.Mutex
	kids       []*child // the live child of each worker, nil while none
	terminated bool
	// workers are the workers, for a caller that runs a task on an idle
	// one itself (see runNow).
	workers []atomic.Pointer[procWorker]
	// callerRuns counts the tasks run by runNow, for the tests.
	callerRuns atomic.Int64
	failed     error // the initializer's failure: every unit fails with it

	names atomic.Int64
}

// Remote reports true: tasks run in child processes.
func (b *procBackend) Remote() bool { return true }

// Terminate kills every worker process; the workers then fail what they
// hold with ErrTerminated.
func (b *procBackend) Terminate() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.terminated = true
	for _, ch := range b.kids {
		if ch != nil {
			ch.signal(sigKill)
		}
	}
}

func (b *procBackend) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

// setKid records the live child of worker i; it reports false, and kills
// ch, if the pool was terminated meanwhile.
func (b *procBackend) setKid(i int, ch *child) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kids[i] = ch
	if ch != nil && b.terminated {
		ch.signal(sigKill)
		return false
	}
	return true
}

// pids returns the pids of the live workers.
func (b *procBackend) pids() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []int
	for _, ch := range b.kids {
		if ch != nil {
			out = append(out, ch.pid)
		}
	}
	return out
}
