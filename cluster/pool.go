package cluster

import (
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/backend"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

func init() {
	// A task whose worker process died (Serve with ProcessPool) fails with
	// an *mp.ExitError on the worker; registered, it reaches the submitter
	// with its type, as from a local process pool.
	gob.Register(&mp.ExitError{})
	if backend.Version != 1 {
		panic("mp: package cluster was written for version 1 of mp's back-end seam, and mp has version " + strconv.Itoa(backend.Version) + "; use a version of github.com/mpgo/mp/cluster made for this mp")
	}
}

// NewPool returns a pool whose tasks run on the workers that [Serve] pool
// name on the JetStream server js is connected to, in any process on any
// machine that runs the same binary. It is an ordinary *mp.Pool:
// [mp.Map], [mp.MapSeq], [mp.MapSeqUnordered], [mp.Apply],
// [mp.ApplyAsync], Close, Terminate, Join and Stats work on it as on a
// process pool, and only functions registered with [mp.Register] may be
// submitted (a closure fails at once with an error wrapping
// [mp.ErrNotRegistered]). It is the analogue of submitting to a Celery
// or RQ queue, without leaving mp's API.
//
// Many submitters may share a pool name; each gets its own replies. The
// pool keeps [Window] tasks in flight; the workers decide how many run at
// once. ctx bounds the set-up only: NewPool creates the pool's stream and
// consumer if they do not exist yet, and sets [MaxDeliver] and [AckWait]
// on them for every submitter and worker.
//
// Execution is at least once. A task whose worker dies or goes silent for
// AckWait is delivered to another worker, up to MaxDeliver deliveries;
// then it fails with an error wrapping [mp.ErrLost]. A task may thus run
// more than once, in part or in full, so tasks should be idempotent: write
// results under a key derived from the argument, not appended. Each task
// is published with a message id, so a submission that the server got
// twice (a retry after a lost acknowledgement) runs once.
//
// A task's context deadline travels with it, and the worker runs the task
// under it. When a task's context is done before its reply comes, the
// task ends with context.Cause of it at once, and its worker is asked to
// cancel it. Terminate fails every task not yet resolved with
// [mp.ErrTerminated], removes this submitter's queued tasks from the
// server, and asks workers to cancel the ones they run. A task's error,
// or its panic as an *mp.PanicError, arrives as from a process pool.
//
// Each task costs some 120 to 190 µs of the server's, the submitter's and
// the worker's time on top of the task itself, on 2 cores with the
// server in-process (BenchmarkPipelined in BENCH.md), so tasks of under a
// millisecond are best sent in chunks, as [mp.Map] does by itself.
//
// The submitter confirms each reply it gets. A worker whose reply was not
// confirmed (the submitter was reconnecting) hands the task back to the
// server, to run again a little later, until its deliveries run out; a
// task whose submitter is gone for good is then dropped by the workers.
// A submitter that stays disconnected longer than that waits for the
// task's context or Terminate, so give such tasks a deadline.
func NewPool(ctx context.Context, js jetstream.JetStream, name string, opts ...Option) (*mp.Pool, error) {
	c := configure(opts)
	stream, _, err := poolSetup(ctx, js, name, &c, true)
	if err != nil {
		return nil, err
	}
	nc := js.Conn()
	s := &submitter{
		js:      js,
		nc:      nc,
		stream:  stream,
		name:    name,
		id:      nuid.Next(),
		c:       c,
		waiting: map[uint64]*waiter{},
		bySeq:   map[uint64]*waiter{},
		term:    make(chan struct{}),
		workers: c.window,
	}
	s.subject = poolPrefix(name) + s.id
	s.inbox = nc.NewInbox()
	if s.replies, err = nc.Subscribe(s.inbox+".*", s.onReply); err != nil {
		return nil, fmt.Errorf("cluster: subscribe to replies: %w", err)
	}
	// The handlers only hand messages on, so the subscriptions keep up;
	// a limit would drop replies silently when many large ones arrive
	// at once.
	_ = s.replies.SetPendingLimits(-1, -1)
	advisories := "$JS.EVENT.ADVISORY.CONSUMER.*." + poolStream(name) + "." + workersConsumer
	if s.advisories, err = nc.Subscribe(advisories, s.onAdvisory); err != nil {
		_ = s.replies.Unsubscribe()
		return nil, fmt.Errorf("cluster: subscribe to advisories: %w", err)
	}
	_ = s.advisories.SetPendingLimits(-1, -1)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		s.unsubscribe()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return mp.NewPoolOn(c.window, s, c.poolOpts...), nil
}

// submitter is the back-end of a pool made by NewPool: each of its
// workers publishes one task at a time and waits for its reply.
type submitter struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	stream  jetstream.Stream
	name    string
	id      string // this submitter, unique among all of the pool
	subject string // where this submitter's tasks go
	inbox   string // replies come to inbox.<task number>
	c       config

	next     atomic.Uint64
	term     chan struct{} // closed by Terminate
	termOnce sync.Once

	replies, advisories *nats.Subscription

	mu      sync.Mutex
	waiting map[uint64]*waiter // by task number
	bySeq   map[uint64]*waiter // by stream sequence, once published
	workers int                // Work calls still running
}

type waiter struct {
	seq  uint64
	done chan outcome // one outcome is kept; later ones are dropped
	// claimed: a worker was told to run the task; refused: none will be.
	// Guarded by submitter.mu.
	claimed, refused bool
}

// awaitEnd waits, after a claimed task was cancelled, until the worker
// running it has ended it, so that nothing of a task runs once its result
// is in: its reply, Terminate, or one AckWait without a word, since the
// worker may have died.
func (s *submitter) awaitEnd(w *waiter) {
	dead := time.NewTimer(s.c.ackWait)
	defer dead.Stop()
	select {
	case <-w.done:
	case <-s.term:
	case <-dead.C:
	}
}

type outcome struct {
	r    backend.Reply
	err  error
	lost bool // the server gave up on it: it must be deleted
}

func (w *waiter) resolve(o outcome) {
	select {
	case w.done <- o:
	default:
	}
}

// Remote reports true: tasks leave this process.
func (s *submitter) Remote() bool { return true }

// Work sends the tasks of q one at a time; the pool's Window of Work
// calls keeps that many in flight.
func (s *submitter) Work(_ int, q backend.Queue) {
	defer s.exit()
	for {
		t, ok := q.Next()
		if !ok {
			return
		}
		if q.Terminated() {
			q.Started()
			q.Ended(true)
			t.Fail(mp.ErrTerminated)
			continue
		}
		s.run(q, t)
	}
}

func (s *submitter) exit() {
	s.mu.Lock()
	s.workers--
	last := s.workers == 0
	s.mu.Unlock()
	if last {
		s.unsubscribe()
	}
}

func (s *submitter) unsubscribe() {
	_ = s.replies.Unsubscribe()
	_ = s.advisories.Unsubscribe()
}

func (s *submitter) run(q backend.Queue, t backend.Task) {
	ctx := t.Context()
	fail := func(err error) {
		q.Started()
		q.Ended(true)
		t.Fail(err)
	}
	if ctx != nil && ctx.Err() != nil {
		fail(context.Cause(ctx))
		return
	}
	req, err := t.Request()
	if err != nil {
		fail(err)
		return
	}
	n := s.next.Add(1)
	e := envelope{
		req:      req,
		id:       s.id + "." + strconv.FormatUint(n, 10),
		reply:    s.inbox + "." + strconv.FormatUint(n, 10),
		progress: s.c.ackWait / 3,
	}
	if ctx != nil {
		e.deadline, _ = ctx.Deadline()
	}
	m := newTaskMsg(s.subject, &e)
	if size, limit := msgSize(m), s.nc.MaxPayload(); int64(size) > limit {
		fail(fmt.Errorf("cluster: the task's message takes %d bytes, more than the server's max_payload of %d: %w", size, limit, nats.ErrMaxPayload))
		return
	}
	w := &waiter{done: make(chan outcome, 1)}
	s.mu.Lock()
	s.waiting[n] = w
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, n)
		delete(s.bySeq, w.seq)
		s.mu.Unlock()
	}()

	q.Started()
	seq, err := s.publish(ctx, m)
	if err != nil {
		if ctx != nil && ctx.Err() != nil {
			s.cancel("t:"+e.id, 0) // in case the server stored it after all
		}
		q.Ended(t.Complete(backend.Reply{}, err))
		return
	}
	s.mu.Lock()
	w.seq = seq
	s.bySeq[seq] = w
	s.mu.Unlock()

	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	select {
	case o := <-w.done:
		if o.lost {
			s.deleteMsg(seq)
		}
		q.Ended(t.Complete(o.r, o.err))
	case <-ctxDone:
		s.mu.Lock()
		claimed := w.claimed
		w.refused = true // a worker that asks from now on is told no
		s.mu.Unlock()
		if claimed {
			// The worker acknowledges the message once the task ended;
			// deleting it now would end the wait with an advisory.
			s.cancel("t:"+e.id, 0)
			s.awaitEnd(w)
		} else {
			s.cancel("t:"+e.id, seq)
		}
		q.Ended(t.Complete(backend.Reply{}, context.Cause(ctx)))
	case <-s.term:
		q.Ended(t.Complete(backend.Reply{}, mp.ErrTerminated))
	}
}

// publish sends m and returns its stream sequence. A publish whose
// acknowledgement is lost is sent again with the same message id, which
// the server drops if the first one did arrive.
func (s *submitter) publish(ctx context.Context, m *nats.Msg) (uint64, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	// While connected, a publish is not cut short by the task's ctx: a
	// message the server stored after all would run with nobody to
	// cancel it, so the submitter waits to learn its sequence. A
	// publish that only waits for a reconnection ends with ctx.
	base := ctx
	if s.nc.IsConnected() {
		base = context.WithoutCancel(ctx)
	}
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(base, 5*time.Second)
		ack, err := s.js.PublishMsg(pctx, m)
		cancel()
		if err == nil {
			return ack.Sequence, nil
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("cluster: submit a task to pool %s: no acknowledgement from the server, connection %s: %w", s.name, status(s.nc), context.Cause(ctx))
		}
		retry := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse)
		select {
		case <-s.term:
			return 0, mp.ErrTerminated
		default:
		}
		if !retry || attempt == 3 {
			return 0, fmt.Errorf("cluster: submit a task to pool %s: %w", s.name, err)
		}
	}
}

// cancel tells the workers to stop the task with message id id (payload
// "t:<id>") or all tasks of this submitter ("s:<id>"), and removes the task
// of stream sequence seq from the stream if no worker took it yet.
func (s *submitter) cancel(what string, seq uint64) {
	_ = s.nc.Publish(cancelSubject(s.name), []byte(what))
	if seq != 0 {
		s.deleteMsg(seq)
	}
}

func (s *submitter) deleteMsg(seq uint64) {
	if !s.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.stream.DeleteMsg(ctx, seq) // gone already when a worker acked it
}

// Terminate fails the tasks in flight with mp.ErrTerminated (their Work
// calls see term closed), removes this submitter's queued tasks from the
// stream, and asks the workers to cancel the ones they run.
func (s *submitter) Terminate() {
	s.termOnce.Do(func() {
		close(s.term)
		_ = s.nc.Publish(cancelSubject(s.name), []byte("s:"+s.id))
		if !s.nc.IsConnected() {
			return // the workers drop the tasks once nobody takes their replies
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.subject))
	})
}

// status names the state of a connection that is not connected.
func status(nc *nats.Conn) string {
	switch nc.Status() {
	case nats.RECONNECTING:
		return "lost (reconnecting)"
	case nats.CLOSED:
		return "closed"
	case nats.CONNECTED:
		return "up"
	default:
		return "not ready"
	}
}

// onReply takes a worker's claim of a task, or a task's reply.
//
// A worker claims a task before it runs it, and runs it only if told
// "go". So a submitter whose task's context ends knows whether the task
// runs somewhere, and waits for its end, or will never run: a worker
// that claims it later is told no.
func (s *submitter) onReply(m *nats.Msg) {
	n, err := strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 10, 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	w := s.waiting[n]
	if m.Header.Get(hdrClaim) != "" {
		answer := claimNo
		select {
		case <-s.term:
		default:
			// A task delivered again (its first worker died) is claimed
			// again.
			if w != nil && !w.refused {
				w.claimed = true
				answer = claimGo
			}
		}
		s.mu.Unlock()
		_ = m.Respond([]byte(answer))
		return
	}
	s.mu.Unlock()
	if w == nil {
		// A duplicate, or a task that ended already: nobody waits.
		if m.Reply != "" {
			_ = m.Respond(nil)
		}
		return
	}
	r, err := readReply(m)
	w.resolve(outcome{r: r, err: err})
	if m.Reply != "" {
		_ = m.Respond(nil) // the worker may now forget the task
	}
}

// advisory holds the fields this package reads from JetStream's
// max_deliver and terminated advisories.
type advisory struct {
	Type       string `json:"type"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
}

func (s *submitter) onAdvisory(m *nats.Msg) {
	var a advisory
	if json.Unmarshal(m.Data, &a) != nil {
		return
	}
	s.mu.Lock()
	w := s.bySeq[a.StreamSeq]
	refused := w != nil && w.refused
	s.mu.Unlock()
	if w == nil || refused {
		return // a task this submitter cancelled, and deleted
	}
	switch a.Type {
	case "io.nats.jetstream.advisory.v1.max_deliver":
		w.resolve(outcome{lost: true, err: fmt.Errorf("cluster: pool %s: task delivered %d times, the MaxDeliver limit, and no worker replied (each died or went silent for AckWait): %w", s.name, a.Deliveries, mp.ErrLost)})
	case "io.nats.jetstream.advisory.v1.terminated":
		reason := a.Reason
		if reason == "" {
			reason = "no reason given"
		}
		w.resolve(outcome{err: fmt.Errorf("cluster: pool %s: a worker refused the task: %s", s.name, reason)})
	}
}
