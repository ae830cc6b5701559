package cluster

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/mpgo/mp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// core is the state of a queue handle.
type core[T any] struct {
	ctx        context.Context // the handle's life
	js         jetstream.JetStream
	stream     jetstream.Stream
	cons       jetstream.Consumer
	name       string
	items      string // the subject of the items
	closedSubj string // the subject of the close mark
	joinable   bool
	progress   time.Duration

	mu       sync.Mutex
	held     []jetstream.Msg // got, not yet done, oldest first
	beating  bool            // the progress goroutine runs
	idle     chan struct{}   // tells it that nothing is held any more
	closed   bool            // a close mark was seen
	stopLife func() bool
}

func (c *core[T]) init(ctx context.Context, js jetstream.JetStream, name string, maxsize int, joinable bool, opts []Option) error {
	if err := checkName(name); err != nil {
		return err
	}
	cfg := configure(opts)
	c.ctx, c.js, c.name, c.joinable = ctx, js, name, joinable
	c.items, c.closedSubj = "mpq."+name+".items", "mpq."+name+".closed"
	c.progress = cfg.ackWait / 3
	sc := jetstream.StreamConfig{
		Name:        "MPQ_" + name,
		Description: "items of the mp queue " + name,
		Subjects:    []string{c.items, c.closedSubj},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storageFor(js, &cfg),
	}
	if maxsize > 0 {
		sc.MaxMsgsPerSubject = int64(maxsize)
		sc.Discard = jetstream.DiscardNew
		sc.DiscardNewPerSubject = true
	}
	s, err := ensureStream(ctx, js, sc)
	if err != nil {
		return err
	}
	cons, err := ensureConsumer(ctx, s, jetstream.ConsumerConfig{
		Durable:       consumersConsumer,
		FilterSubject: c.items,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.ackWait,
		MaxDeliver:    cfg.maxDeliver,
		MaxAckPending: -1,
	}, false)
	if err != nil {
		return err
	}
	c.stream, c.cons = s, cons
	c.stopLife = context.AfterFunc(ctx, c.release)
	return nil
}

// release hands the items this handle holds back to the server, for
// other consumers, at the end of the handle's life.
func (c *core[T]) release() {
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	for _, m := range held {
		_ = m.Nak()
	}
}

func (c *core[T]) alive(ctx context.Context) error {
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("cluster: queue %s: the handle's context is done: %w", c.name, err)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

func (c *core[T]) put(ctx context.Context, v T, block bool) error {
	if err := c.alive(ctx); err != nil {
		return err
	}
	data, err := encodeItem(v)
	if err != nil {
		return fmt.Errorf("cluster: queue %s: encode item: %w", c.name, err)
	}
	m := nats.NewMsg(c.items)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, nuid.Next())
	if size, limit := msgSize(m), c.js.Conn().MaxPayload(); int64(size) > limit {
		return fmt.Errorf("cluster: queue %s: the item's message takes %d bytes, more than the server's max_payload of %d: %w", c.name, size, limit, nats.ErrMaxPayload)
	}
	wait := time.Millisecond
	for attempt := 1; ; attempt++ {
		// The publish fails once a close mark is in the stream, so that a
		// Put racing with Close from another process is refused by the
		// server itself.
		_, err := c.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequenceForSubject(0, c.closedSubj))
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
			return mp.ErrClosed
		case strings.Contains(err.Error(), "maximum messages per subject exceeded"):
			if !block {
				return mp.ErrFull
			}
			select {
			case <-time.After(wait):
				wait = min(2*wait, 50*time.Millisecond)
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-c.ctx.Done():
				return c.alive(ctx)
			}
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case attempt < 3 && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse)):
			// The message id makes a second arrival a no-op.
		default:
			return fmt.Errorf("cluster: queue %s: put: %w", c.name, err)
		}
	}
}

func (c *core[T]) get(ctx context.Context, block bool) (T, error) {
	var zero T
	for {
		if err := c.alive(ctx); err != nil {
			return zero, err
		}
		closed := c.isClosed()
		m, err := c.fetchOne(ctx, block && !closed)
		if m != nil || err != nil {
			return c.got(ctx, m, err)
		}
		if err := ctx.Err(); err != nil {
			return zero, context.Cause(ctx)
		}
		if !closed {
			if c.checkClosed(ctx) {
				continue // look once more without waiting
			}
			if !block {
				return zero, mp.ErrEmpty
			}
			continue
		}
		if c.drained(ctx) {
			return zero, mp.ErrClosed
		}
		// Other consumers hold items, which come back if they die.
		if !block {
			return zero, mp.ErrEmpty
		}
		if m, err := c.fetchOne(ctx, true); m != nil || err != nil {
			return c.got(ctx, m, err)
		}
	}
}

// got returns the item of m, or the error of the fetch that should have
// brought one.
func (c *core[T]) got(ctx context.Context, m jetstream.Msg, err error) (T, error) {
	if err != nil {
		var zero T
		if ctx.Err() != nil {
			return zero, context.Cause(ctx)
		}
		return zero, fmt.Errorf("cluster: queue %s: get: %w", c.name, err)
	}
	return c.take(m)
}

// drained reports whether no item is left that a Get could still return:
// none waits, and none is held by another handle, whose items come back
// if it dies. Items this handle holds do not count: it is alive.
func (c *core[T]) drained(ctx context.Context) bool {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return false
	}
	c.mu.Lock()
	held := len(c.held)
	c.mu.Unlock()
	return info.NumPending == 0 && info.NumAckPending <= held
}

// fetchOne returns the next item's message, or nil if none came, waiting
// up to getPoll for one if wait is set.
func (c *core[T]) fetchOne(ctx context.Context, wait bool) (jetstream.Msg, error) {
	var batch jetstream.MessageBatch
	var err error
	if wait {
		fctx, cancel := context.WithTimeout(ctx, getPoll)
		defer cancel()
		batch, err = c.cons.Fetch(1, jetstream.FetchContext(fctx))
	} else {
		batch, err = c.cons.FetchNoWait(1)
	}
	if err != nil {
		return nil, err
	}
	for m := range batch.Messages() {
		return m, nil
	}
	return nil, nil
}

// take decodes the item of m and holds m until TaskDone, or removes it
// from the server at once for a plain Queue. An item that does not decode
// is removed, never delivered again, and its Get fails.
func (c *core[T]) take(m jetstream.Msg) (T, error) {
	v, err := decodeItem[T](m.Data())
	if err != nil {
		_ = m.TermWithReason("item does not decode")
		return v, fmt.Errorf("cluster: queue %s: an item does not decode as %s and was dropped: %w", c.name, reflect.TypeFor[T](), err)
	}
	if !c.joinable {
		_ = m.Ack()
		return v, nil
	}
	c.mu.Lock()
	c.held = append(c.held, m)
	start := !c.beating
	c.beating = true
	if c.idle == nil {
		c.idle = make(chan struct{}, 1)
	}
	c.mu.Unlock()
	if start {
		go c.beat()
	}
	return v, nil
}

// beat reports progress on the held items until none is left or the
// handle's life ends.
func (c *core[T]) beat() {
	t := time.NewTicker(c.progress)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.idle:
		case <-c.ctx.Done():
			c.mu.Lock()
			c.beating = false
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		if len(c.held) == 0 {
			c.beating = false
			c.mu.Unlock()
			return
		}
		held := append([]jetstream.Msg(nil), c.held...)
		c.mu.Unlock()
		for _, m := range held {
			_ = m.InProgress()
		}
	}
}

func (c *core[T]) taskDone() {
	c.mu.Lock()
	if len(c.held) == 0 {
		c.mu.Unlock()
		panic("mp: cluster.JoinableQueue.TaskDone called more times than this handle got items")
	}
	m := c.held[0]
	c.held = c.held[1:]
	if len(c.held) == 0 {
		select {
		case c.idle <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
	_ = m.Ack()
}

func (c *core[T]) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// checkClosed asks the server whether the queue has a close mark.
func (c *core[T]) checkClosed(ctx context.Context) bool {
	if ctx.Done() == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	_, err := c.stream.GetLastMsgForSubject(ctx, c.closedSubj)
	if err != nil {
		return false
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return true
}

func (c *core[T]) len() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0
	}
	return int(info.NumPending)
}

func (c *core[T]) close(now bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := nats.NewMsg(c.closedSubj)
	// One close mark however many processes close the queue.
	m.Header.Set(jetstream.MsgIDHeader, "closed")
	if _, err := c.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("cluster: queue %s: close: %w", c.name, err)
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if now {
		if err := c.stream.Purge(ctx, jetstream.WithPurgeSubject(c.items)); err != nil {
			return fmt.Errorf("cluster: queue %s: close: %w", c.name, err)
		}
	}
	return nil
}

func (c *core[T]) all(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := c.get(ctx, true)
			if errors.Is(err, mp.ErrClosed) {
				return
			}
			if err != nil {
				yield(v, err)
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}

func (c *core[T]) join(ctx context.Context) error {
	wait := time.Millisecond
	var suspect uint64 // items left over at the last look, with none pending or held
	for {
		if err := c.alive(ctx); err != nil {
			return err
		}
		left, err := c.itemsLeft(ctx)
		if err != nil {
			return fmt.Errorf("cluster: queue %s: join: %w", c.name, err)
		}
		if left == 0 {
			return nil
		}
		delivered, idle, err := c.allDelivered(ctx)
		if err != nil {
			return fmt.Errorf("cluster: queue %s: join: %w", c.name, err)
		}
		if !idle {
			suspect = 0
		} else if suspect == left {
			return c.reapLost(ctx, left, delivered)
		} else {
			// Every item was delivered and none is held, so what is left
			// ran out of deliveries; unless the server has not yet removed
			// items just marked done, which a second look tells.
			suspect = left
			wait = 50 * time.Millisecond
		}
		select {
		case <-time.After(wait):
			wait = min(2*wait, 50*time.Millisecond)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// itemsLeft returns how many items the stream holds: not yet marked done,
// or lost.
func (c *core[T]) itemsLeft(ctx context.Context) (uint64, error) {
	info, err := c.stream.Info(ctx, jetstream.WithSubjectFilter(c.items))
	if err != nil {
		return 0, err
	}
	return info.State.Subjects[c.items], nil
}

// allDelivered reports whether every item in the stream has been
// delivered and none is held now, and up to which stream sequence items
// were delivered. The consumer's counts trail the stream a little, so an
// item put just now may not be counted pending yet; its sequence, beyond
// the last delivered, tells.
func (c *core[T]) allDelivered(ctx context.Context) (delivered uint64, idle bool, err error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, false, err
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		return 0, false, nil
	}
	last, err := c.stream.GetLastMsgForSubject(ctx, c.items)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return info.Delivered.Stream, true, nil
	}
	if err != nil {
		return 0, false, err
	}
	return info.Delivered.Stream, info.Delivered.Stream >= last.Sequence, nil
}

// reapLost removes the items that ran out of deliveries, those up to
// sequence delivered that are still in the stream, and reports them once.
func (c *core[T]) reapLost(ctx context.Context, lost, delivered uint64) error {
	if err := c.stream.Purge(ctx, jetstream.WithPurgeSubject(c.items), jetstream.WithPurgeSequence(delivered+1)); err != nil {
		return fmt.Errorf("cluster: queue %s: join: %w", c.name, err)
	}
	return fmt.Errorf("cluster: queue %s: %d items were delivered as many times as MaxDeliver allows and never marked done (their consumers died or went silent): %w", c.name, lost, mp.ErrLost)
}

var bytesType = reflect.TypeFor[[]byte]()

func encodeItem[T any](v T) ([]byte, error) {
	if b, ok := any(v).([]byte); ok {
		return b, nil
	}
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Interface && t.Size() == 0 {
		return nil, nil // gob refuses types with nothing to send
	}
	var buf bytes.Buffer
	// An interface value goes as a pointer to it, so that gob sends its
	// concrete type; any other value goes as itself, as mp sends it.
	var x any = v
	if t.Kind() == reflect.Interface {
		x = &v
	}
	if err := gob.NewEncoder(&buf).Encode(x); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeItem[T any](data []byte) (T, error) {
	var v T
	t := reflect.TypeFor[T]()
	if t == bytesType {
		reflect.ValueOf(&v).Elem().SetBytes(bytes.Clone(data))
		return v, nil
	}
	if t.Kind() != reflect.Interface && t.Size() == 0 {
		return v, nil
	}
	err := gob.NewDecoder(bytes.NewReader(data)).Decode(&v)
	return v, err
}
