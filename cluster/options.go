package cluster

import (
	"log/slog"
	"time"

	"github.com/mpgo/mp"
	"github.com/nats-io/nats.go/jetstream"
)

// Option configures [NewPool], [Serve], [NewQueue] and [NewJoinableQueue].
// Each option says which of them it affects; the others ignore it.
type Option interface{ apply(*config) }

type config struct {
	maxDeliver int
	ackWait    time.Duration
	window     int
	poolOpts   []mp.Option
	slots      int
	procPool   bool
	procOpts   []mp.ProcessOption
	storage    *jetstream.StorageType
	log        *slog.Logger
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Defaults of the options.
const (
	// DefaultMaxDeliver is how many times a task or queue item is
	// delivered at most: the first time and two more after a worker or
	// consumer died holding it, as mp's own queues do.
	DefaultMaxDeliver = 3
	// DefaultAckWait is how long a worker or consumer may stay silent
	// before what it holds is delivered to another: the time it takes to
	// notice that it died. A living holder reports progress three times
	// in that span, so tasks and items may be held far longer.
	DefaultAckWait = 15 * time.Second
	// DefaultWindow is how many tasks a pool keeps in flight at once.
	DefaultWindow = 64
)

func configure(opts []Option) config {
	c := config{maxDeliver: DefaultMaxDeliver, ackWait: DefaultAckWait, window: DefaultWindow, log: slog.Default()}
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

// MaxDeliver sets how many times a task of a pool, or an item of a
// queue, is delivered at most; the default is [DefaultMaxDeliver]. A task
// or item is delivered again when its holder died or went silent for
// [AckWait]: this is the cluster's form of [mp.Retry], counting the first
// delivery, so MaxDeliver(n+1) is Retry(n). Past the limit a pool's task
// fails with an error wrapping [mp.ErrLost], and a queue's Join reports
// the item as lost. MaxDeliver(1) runs each task at most once. It affects
// [NewPool] (which sets it for every submitter and worker of the pool),
// [NewQueue] and [NewJoinableQueue]. MaxDeliver panics if n < 1.
func MaxDeliver(n int) Option {
	if n < 1 {
		panic("mp: cluster.MaxDeliver must be at least 1")
	}
	return optionFunc(func(c *config) { c.maxDeliver = n })
}

// AckWait sets how long a worker or consumer may hold a task or item
// without a sign of life before it is delivered to another; the default
// is [DefaultAckWait]. A worker running a task, and a queue handle holding
// items not yet marked done, send progress every third of it, so a task
// may run for hours while a worker that died is noticed within d. It
// affects [NewPool], [NewQueue] and [NewJoinableQueue]. AckWait panics if
// d < 100 ms.
func AckWait(d time.Duration) Option {
	if d < 100*time.Millisecond {
		panic("mp: cluster.AckWait must be at least 100ms")
	}
	return optionFunc(func(c *config) { c.ackWait = d })
}

// Window sets how many tasks a pool made by [NewPool] keeps in flight at
// once, over all the workers serving it; it is the pool's worker count as
// [mp.Pool.Workers] reports it. The default is [DefaultWindow]. Window
// panics if n < 1.
func Window(n int) Option {
	if n < 1 {
		panic("mp: cluster.Window must be at least 1")
	}
	return optionFunc(func(c *config) { c.window = n })
}

// PoolOptions passes options of package mp, such as [mp.QueueSize], to
// the pool that [NewPool] makes.
func PoolOptions(opts ...mp.Option) Option {
	return optionFunc(func(c *config) { c.poolOpts = append(c.poolOpts, opts...) })
}

// Slots sets how many tasks [Serve] runs at once; the default is
// runtime.NumCPU(). A worker fetches tasks only for free slots, so a task
// never waits in a busy worker while another could run it. Slots panics
// if n < 1.
func Slots(n int) Option {
	if n < 1 {
		panic("mp: cluster.Slots must be at least 1")
	}
	return optionFunc(func(c *config) { c.slots = n })
}

// ProcessPool makes [Serve] run tasks on an [mp.NewProcessPool] of Slots
// worker processes, with opts, instead of on goroutines: a task that
// crashes then takes down one worker process, whose task fails with an
// *mp.ExitError, not the serving program, and a task that ignores its
// expired deadline is killed.
func ProcessPool(opts ...mp.ProcessOption) Option {
	return optionFunc(func(c *config) { c.procPool, c.procOpts = true, opts })
}

// Storage sets where the stream of a pool or queue keeps its messages,
// when this call is the one that creates it. By default it is memory on
// a server started by package embed without a store directory, and files
// everywhere else, so that nothing queued is lost when a server restarts.
func Storage(t jetstream.StorageType) Option {
	return optionFunc(func(c *config) { c.storage = &t })
}

// Logger sets where [Serve] reports what it refused and why (a malformed
// message, a task this binary does not know) and the errors it recovered
// from; the default is slog.Default().
func Logger(l *slog.Logger) Option {
	if l == nil {
		panic("mp: cluster.Logger with a nil logger")
	}
	return optionFunc(func(c *config) { c.log = l })
}
