package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/backend"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxFetchBytes caps the bytes one fetch may bring: the client's
// subscription drops messages past 64 MiB pending without an error a
// caller sees, so a fetch of many large tasks must not come near it.
const maxFetchBytes = 32 << 20

// replyWait is how long a worker waits for its submitter to confirm a
// reply.
const replyWait = 5 * time.Second

// fetchWait is how long one fetch waits for tasks before it asks again.
const fetchWait = 10 * time.Second

// errCancelled is the cause with which a worker cancels a task whose
// submitter no longer waits for it.
var errCancelled = errors.New("cluster: the submitter cancelled the task")

// Serve runs the tasks of pool name, submitted with [NewPool] by any
// process connected to the same JetStream server, until ctx is done. It is
// the worker side, the analogue of starting a Celery or RQ worker: call
// it in the same binary as the submitter, after [mp.Main], on as many
// machines as wanted; workers may come and go at any time.
//
// Serve runs up to [Slots] tasks at once, on goroutines of a local mp pool,
// or on worker processes with [ProcessPool], and fetches tasks only for
// slots that are free. While a task runs, Serve reports progress to the
// server so that the task is not given to another worker; if this process
// dies, the server gives it to another worker after the pool's [AckWait].
//
// Before it runs a task, Serve claims it from its submitter, and drops it
// if the submitter no longer wants it. A task whose submitter does not
// answer (it is reconnecting, or gone) is handed back to the server to be
// tried again later, as is a task whose reply its submitter did not
// confirm; past the pool's delivery limit it is dropped.
//
// A message that is not a task of this version of the package, and a task
// whose function this binary did not register, is refused at once: Serve
// logs why, answers the submitter with an error if the message says
// where, and tells the server not to deliver it again.
//
// When ctx is done, Serve stops fetching, cancels the tasks it runs, hands
// them back to the server for other workers, waits for them to end and
// returns nil. It returns an error only if the pool cannot be set up, or
// if the connection is closed for good.
func Serve(ctx context.Context, js jetstream.JetStream, name string, opts ...Option) error {
	c := configure(opts)
	slots := c.slots
	if slots == 0 {
		slots = runtime.NumCPU()
	}
	_, cons, err := poolSetup(ctx, js, name, &c, false)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w := &worker{nc: js.Conn(), name: name, log: c.log, running: map[string]*running{}}
	if info := cons.CachedInfo(); info != nil {
		w.maxDeliver = info.Config.MaxDeliver
	}
	if c.procPool {
		w.local = mp.NewProcessPool(slots, c.procOpts...)
	} else {
		w.local = mp.NewPool(slots)
	}
	defer func() {
		w.local.Close()
		_ = w.local.Join(context.Background())
	}()
	sub, err := w.nc.Subscribe(cancelSubject(name), w.onCancel)
	if err != nil {
		return fmt.Errorf("cluster: subscribe to cancellations: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	free := make(chan struct{}, slots) // a token per busy slot
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case free <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1
	more:
		for n < slots {
			select {
			case free <- struct{}{}:
				n++
			default:
				break more
			}
		}
		got, err := w.fetch(ctx, cons, n, func(m jetstream.Msg) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-free }()
				w.handle(ctx, m)
			}()
		})
		for range n - got {
			<-free
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if w.nc.IsClosed() {
				return fmt.Errorf("cluster: serve pool %s: connection closed: %w", name, err)
			}
			w.log.Warn("cluster: fetching tasks failed; trying again", "pool", name, "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// worker is the state of one Serve call.
type worker struct {
	nc    *nats.Conn
	name  string
	log   *slog.Logger
	local *mp.Pool
	// maxDeliver is the pool's delivery limit, as the consumer had it
	// when Serve started.
	maxDeliver int

	mu      sync.Mutex
	running map[string]*running  // by message id
	gone    map[string]time.Time // cancellations: message ids, and "s:" submitters
}

type running struct {
	cancel context.CancelCauseFunc
}

// cancelMemory is how long a worker remembers a cancellation, for a task
// that it receives after the cancellation.
const cancelMemory = time.Minute

// cancelledLocked returns the cause with which the task of message id id
// was cancelled before this worker ran it, or nil; w.mu is held.
func (w *worker) cancelledLocked(id string) error {
	if _, ok := w.gone[id]; ok {
		return errCancelled
	}
	if i := strings.IndexByte(id, '.'); i >= 0 {
		if _, ok := w.gone["s:"+id[:i]]; ok {
			return mp.ErrTerminated
		}
	}
	return nil
}

// remember records a cancellation; w.mu is held.
func (w *worker) remember(key string) {
	now := time.Now()
	if w.gone == nil {
		w.gone = map[string]time.Time{}
	}
	w.gone[key] = now
	if len(w.gone)%256 == 0 {
		for k, t := range w.gone {
			if now.Sub(t) > cancelMemory {
				delete(w.gone, k)
			}
		}
	}
}

// fetch asks for up to n tasks, gives each to start, and returns how many
// came. A fetch that found nothing, or a missed heartbeat, is no error.
func (w *worker) fetch(ctx context.Context, cons jetstream.Consumer, n int, start func(jetstream.Msg)) (int, error) {
	fctx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	batch, err := cons.Fetch(n, jetstream.FetchContext(fctx), jetstream.FetchMaxBytes(maxFetchBytes))
	if err != nil {
		return 0, err
	}
	got := 0
	for m := range batch.Messages() {
		got++
		start(m)
	}
	err = batch.Error()
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) {
		return got, nil
	}
	return got, err
}

// handle runs one task message and answers it.
func (w *worker) handle(ctx context.Context, m jetstream.Msg) {
	e, err := readTask(m.Headers(), m.Data())
	if err != nil {
		w.refuse(m, e.reply, err.Error())
		return
	}
	// Claim the task from its submitter, which then knows it runs.
	claim := nats.NewMsg(e.reply)
	claim.Header.Set(hdrVersion, wireVersion)
	claim.Header.Set(hdrClaim, "1")
	answer, err := w.nc.RequestMsg(claim, replyWait)
	if err != nil {
		w.undelivered(m, e, err)
		return
	}
	if string(answer.Data) != claimGo {
		_ = m.Ack() // cancelled, or claimed by another worker: not wanted
		return
	}
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if !e.deadline.IsZero() {
		var stop context.CancelFunc
		tctx, stop = context.WithDeadline(tctx, e.deadline)
		defer stop()
	}
	if e.id != "" {
		// One look under the lock: a cancellation comes before it and is
		// remembered, or after it and finds the task running.
		w.mu.Lock()
		w.running[e.id] = &running{cancel: cancel}
		if cause := w.cancelledLocked(e.id); cause != nil {
			cancel(cause)
		}
		w.mu.Unlock()
		defer func() {
			w.mu.Lock()
			delete(w.running, e.id)
			w.mu.Unlock()
		}()
	}
	stopProgress := w.progress(m, e.progress)
	r := mp.RunRequest(tctx, w.local, e.req)
	stopProgress()

	switch {
	case ctx.Err() != nil:
		// Serve is stopping: another worker runs the task at once.
		_ = m.Nak()
		return
	case errors.Is(context.Cause(tctx), errCancelled), errors.Is(context.Cause(tctx), mp.ErrTerminated):
		// The submitter waits for the task's end, not for its reply.
		_ = w.nc.PublishMsg(newReplyMsg(e.reply, r))
		_ = m.Ack()
		return
	}
	reply := newReplyMsg(e.reply, r)
	if size, limit := msgSize(reply), w.nc.MaxPayload(); int64(size) > limit {
		reply = newFailMsg(e.reply, fmt.Sprintf("cluster: the task's reply takes %d bytes, more than the server's max_payload of %d", size, limit))
	}
	// The submitter confirms the reply, since a plain publish to a
	// submitter that is reconnecting would be lost, and its task with it.
	if _, err := w.nc.RequestMsg(reply, replyWait); err != nil {
		w.undelivered(m, e, err)
		return
	}
	if unknownFunc(r) {
		w.log.Warn("cluster: refused a task this binary does not have; is every worker running the submitter's binary?", "pool", w.name, "func", e.req.Func)
		_ = m.TermWithReason("unknown task " + e.req.Func)
		return
	}
	_ = m.Ack()
}

// undelivered deals with a reply that its submitter did not confirm:
// the task is delivered again after a while, when the submitter may be
// back, or dropped once its deliveries have run out.
func (w *worker) undelivered(m jetstream.Msg, e *envelope, err error) {
	md, merr := m.Metadata()
	if merr == nil && w.maxDeliver > 0 && md.NumDelivered >= uint64(w.maxDeliver) {
		w.log.Warn("cluster: dropped a task whose submitter is gone", "pool", w.name, "func", e.req.Func, "err", err)
		_ = m.TermWithReason("no submitter confirmed the reply")
		return
	}
	w.log.Info("cluster: the submitter did not confirm a reply; the task will run again", "pool", w.name, "func", e.req.Func, "err", err)
	_ = m.NakWithDelay(max(e.progress, time.Second))
}

// unknownFunc reports whether r says that its task names a function this
// binary did not register. The error is in mp's encoding, which only mp
// decodes; its text is in it.
func unknownFunc(r backend.Reply) bool {
	return r.Err != nil && bytes.Contains(r.Err, []byte(mp.ErrNotRegistered.Error()))
}

// refuse terminates a message that is not a task this worker can run, so
// that it is never delivered again, and answers its submitter if it can.
func (w *worker) refuse(m jetstream.Msg, reply, why string) {
	w.log.Warn("cluster: refused a malformed message", "pool", w.name, "subject", m.Subject(), "reason", why)
	if reply != "" {
		_ = w.nc.PublishMsg(newFailMsg(reply, why))
	}
	_ = m.TermWithReason(why)
}

// progress tells the server every interval that m is still being worked
// on, until the returned function is called.
func (w *worker) progress(m jetstream.Msg, interval time.Duration) (stop func()) {
	if interval <= 0 {
		interval = DefaultAckWait / 3
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = m.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// onCancel cancels the tasks a cancellation names: "t:<message id>" one
// task whose submitter stopped waiting, "s:<submitter>" all the tasks of a
// submitter that terminated its pool.
func (w *worker) onCancel(m *nats.Msg) {
	what := string(m.Data)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case strings.HasPrefix(what, "t:"):
		w.remember(what[2:])
		if r := w.running[what[2:]]; r != nil {
			r.cancel(errCancelled)
		}
	case strings.HasPrefix(what, "s:"):
		w.remember(what)
		prefix := what[2:] + "."
		for id, r := range w.running {
			if strings.HasPrefix(id, prefix) {
				r.cancel(mp.ErrTerminated)
			}
		}
	}
}
