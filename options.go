package mp

import (
	"fmt"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// Option configures any [Pool]: one made by [NewPool], [NewProcessPool]
// or [NewPoolOn]. Options are created by functions of this package, such
// as [QueueSize]. Every Option is also a [ProcessOption].
type Option interface {
	ProcessOption
	apply(*config)
}

// ProcessOption configures a process pool ([NewProcessPool]). Besides
// every [Option], the options that mean something only for worker
// processes ([MaxTasksPerChild], [Initializer], [Retry], [Grace],
// [Pipeline], [WorkerGOMAXPROCS]) are ProcessOptions, so that NewPool
// does not compile with them rather than ignoring them.
type ProcessOption interface {
	applyProcess(*config)
}

type config struct {
	queueSize int
	proc      procConfig // the options of a process pool
}

// optionFunc is an Option, usable on every pool.
type optionFunc func(*config)

func (f optionFunc) apply(c *config)        { f(c) }
func (f optionFunc) applyProcess(c *config) { f(c) }

// processOptionFunc is a ProcessOption only.
type processOptionFunc func(*config)

func (f processOptionFunc) applyProcess(c *config) { f(c) }

// configure applies opts over the defaults of a pool of workers workers.
func configure[O ProcessOption](workers int, opts []O) config {
	c := config{
		queueSize: max(1024, 4*workers),
		proc:      procConfig{window: 128, grace: 250 * time.Millisecond, gomaxprocs: -1},
	}
	for _, o := range opts {
		o.applyProcess(&c)
	}
	return c
}

// QueueSize sets how many submitted units may wait for a worker before
// submission blocks. The default is max(1024, 4*workers). An item of
// MapSeq takes one entry; a Map call takes one per chunk on a process
// pool and at most one per worker on a goroutine pool. QueueSize panics
// if n < 1.
func QueueSize(n int) Option {
	if n < 1 {
		panic("mp: QueueSize must be at least 1")
	}
	return optionFunc(func(c *config) { c.queueSize = n })
}

// procConfig holds the options of a process pool.
type procConfig struct {
	maxTasks   int
	retry      int
	window     int
	grace      time.Duration
	gomaxprocs int // -1: decide from the worker count; 0: inherit
	init       *outgoing
	initErr    error
}

// MaxTasksPerChild makes a process pool replace each worker after it has
// run n tasks (a chunk of [Map] counts as one), as Python's
// maxtasksperchild: a way to bound what a leaky task can accumulate. The
// default is 0, which keeps workers for the pool's life. MaxTasksPerChild
// panics if n < 1.
func MaxTasksPerChild(n int) ProcessOption {
	if n < 1 {
		panic("mp: MaxTasksPerChild must be at least 1")
	}
	return processOptionFunc(func(c *config) { c.proc.maxTasks = n })
}

// Initializer makes every worker of a process pool run f(ctx, arg) once,
// before its first task: the analogue of Python's Pool(initializer,
// initargs). f must be registered with [Register]. If it fails in any
// worker, the pool does not start workers again and again as Python's
// does: every task then fails with an error that wraps f's. If f is not
// registered or arg cannot be encoded, every task fails with that error.
func Initializer[A any](f Func[A, struct{}], arg A) ProcessOption {
	e, err := registered(f)
	var raw []byte
	if err == nil {
		raw, err = codecFor[A]().as("the initializer's argument").encode(arg)
	}
	if err != nil {
		err = fmt.Errorf("mp: process pool initializer: %w", err)
	}
	return processOptionFunc(func(c *config) {
		c.proc.initErr = err
		if err == nil {
			c.proc.init = &outgoing{serviceRun, wire.Message{Header: []byte(e.name), Raw: raw}}
		}
	})
}

// Retry makes a process pool run a task again, on a fresh worker, when
// the worker running it dies, up to n times; after that the task fails
// with the *[ExitError]. Only idempotent tasks should be retried, which is
// why the default is 0. A task killed for ignoring its context is not
// retried. Retry panics if n < 0.
func Retry(n int) ProcessOption {
	if n < 0 {
		panic("mp: negative Retry count")
	}
	return processOptionFunc(func(c *config) { c.proc.retry = n })
}

// Grace sets how long a process-pool task may run on after its context is
// done before it is killed together with its worker; the default is
// 250 ms. Grace panics if d < 0.
func Grace(d time.Duration) ProcessOption {
	if d < 0 {
		panic("mp: negative Grace")
	}
	return processOptionFunc(func(c *config) { c.proc.grace = d })
}

// Pipeline sets how many tasks a process pool keeps in flight to each
// worker at most, so that the worker starts the next task without waiting
// for the parent; the default is 128. The pool sends a worker only about
// 2 ms of work ahead, judged by how long its last task took, so that a
// task does not wait long behind others on a busy worker while a free one
// could run it: tasks of 2 ms or more go one at a time.
// Pipeline panics if n < 1.
func Pipeline(n int) ProcessOption {
	if n < 1 {
		panic("mp: Pipeline must be at least 1")
	}
	return processOptionFunc(func(c *config) { c.proc.window = n })
}

// WorkerGOMAXPROCS sets GOMAXPROCS in each worker process; 0 leaves the
// runtime's default. By default a pool with at least as many workers as
// CPUs gives each worker one, which measures faster, and a smaller pool
// leaves the default. A GOMAXPROCS set in the environment wins.
// WorkerGOMAXPROCS panics if n < 0.
func WorkerGOMAXPROCS(n int) ProcessOption {
	if n < 0 {
		panic("mp: negative WorkerGOMAXPROCS")
	}
	return processOptionFunc(func(c *config) { c.proc.gomaxprocs = n })
}
