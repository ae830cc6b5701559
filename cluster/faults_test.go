package cluster_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster"
	"github.com/mpgo/mp/cluster/embed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// workersConsumer opens the consumer that the workers of pool name share,
// to play a worker that takes a task and dies without a word.
func workersConsumer(t *testing.T, js jetstream.JetStream, name string) jetstream.Consumer {
	t.Helper()
	c, err := js.Consumer(t.Context(), "MP_"+name, "workers")
	require.NoError(t, err)
	return c
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), "MP_"+name)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	return info.State.Msgs
}

func TestDeadWorkersTaskIsRedelivered(t *testing.T) {
	srv := server(t)
	p := pool(t, srv, "p", cluster.AckWait(300*time.Millisecond))
	r := mp.ApplyAsync(t.Context(), p, square, 5)

	// A worker takes the task and dies holding it.
	js := connect(t, srv)
	batch, err := workersConsumer(t, js, "p").Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	require.NoError(t, err)
	m := <-batch.Messages()
	require.NotNil(t, m)

	serve(t, srv, "p")
	v, err := r.Get(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 25, v)
}

func TestMaxDeliverExhaustedIsLost(t *testing.T) {
	srv := server(t)
	p := pool(t, srv, "p", cluster.AckWait(200*time.Millisecond), cluster.MaxDeliver(2))
	r := mp.ApplyAsync(t.Context(), p, square, 5)

	// Workers that take the task and die, again and again.
	js := connect(t, srv)
	cons := workersConsumer(t, js, "p")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int)
	go func() {
		got := 0
		for ctx.Err() == nil {
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond))
			if err != nil {
				continue
			}
			for range batch.Messages() {
				got++
			}
		}
		done <- got
	}()
	_, err := r.Get(t.Context())
	require.ErrorIs(t, err, mp.ErrLost)
	assert.Contains(t, err.Error(), "delivered 2 times")
	cancel()
	assert.Equal(t, 2, <-done)
	require.Eventually(t, func() bool { return streamMsgs(t, js, "p") == 0 }, 10*time.Second, time.Millisecond,
		"the lost task is removed from the stream")
}

func TestProgressKeepsLongTaskOnItsWorker(t *testing.T) {
	srv := server(t)
	// Death detection within a second; the task runs for two and a half
	// while another worker waits for tasks.
	p := pool(t, srv, "p", cluster.AckWait(time.Second))
	serve(t, srv, "p", cluster.Slots(1))
	serve(t, srv, "p", cluster.Slots(1))
	before := sleepyRuns.Load()
	v, err := mp.Apply(t.Context(), p, sleepy, 2500)
	require.NoError(t, err)
	assert.Equal(t, 2500, v)
	assert.Equal(t, before+1, sleepyRuns.Load(), "the task ran once")
}

// capture returns the next task message published on pool name.
func capture(t *testing.T, js jetstream.JetStream, name string) <-chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 64)
	sub, err := js.Conn().ChanSubscribe("mp."+name+".t.>", ch)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, js.Conn().Flush())
	return ch
}

func TestDuplicateSubmissionDropped(t *testing.T) {
	srv := server(t)
	js := connect(t, srv)
	msgs := capture(t, js, "p")
	p := pool(t, srv, "p")
	r := mp.ApplyAsync(t.Context(), p, sleepy, 1)
	m := <-msgs
	require.Eventually(t, func() bool { return streamMsgs(t, js, "p") == 1 }, 10*time.Second, time.Millisecond)
	// The submitter sends the task again, as after a lost acknowledgement.
	ack, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	require.NoError(t, err)
	assert.True(t, ack.Duplicate)
	assert.Equal(t, uint64(1), streamMsgs(t, js, "p"))

	before := sleepyRuns.Load()
	serve(t, srv, "p")
	v, err := r.Get(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	require.Eventually(t, func() bool { return streamMsgs(t, js, "p") == 0 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, before+1, sleepyRuns.Load())
}

func TestRefusedMessagesAreTerminated(t *testing.T) {
	srv := server(t)
	js := connect(t, srv)
	msgs := capture(t, js, "p")
	p := pool(t, srv, "p")
	r := mp.ApplyAsync(t.Context(), p, square, 4)
	valid := <-msgs

	var log syncBuffer
	serve(t, srv, "p", cluster.Logger(slog.New(slog.NewTextHandler(&log, nil))))
	v, err := r.Get(t.Context())
	require.NoError(t, err)
	require.Equal(t, 16, v)

	replies := make(chan *nats.Msg, 4)
	inbox := nats.NewInbox()
	sub, err := js.Conn().Subscribe(inbox, func(m *nats.Msg) {
		// Answer as a submitter does: let the worker run the task, and
		// confirm its reply.
		if m.Header.Get("Mp-Claim") != "" {
			_ = m.Respond([]byte("go"))
			return
		}
		_ = m.Respond(nil)
		replies <- m
	})
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()

	// A message that is no task of this package.
	bad := nats.NewMsg("mp.p.t.intruder")
	bad.Header.Set("Mp-Reply", inbox)
	bad.Data = []byte("garbage")
	_, err = js.PublishMsg(t.Context(), bad)
	require.NoError(t, err)
	reply := <-replies
	assert.Contains(t, reply.Header.Get("Mp-Fail"), "malformed task message")

	// A task this binary does not have.
	unknown := nats.NewMsg(valid.Subject)
	for k, v := range valid.Header {
		unknown.Header[k] = v
	}
	unknown.Header.Set("Mp-Func", "example.com/other.task func(context.Context, int) (int, error)")
	unknown.Header.Set("Nats-Msg-Id", "unknown-1")
	unknown.Header.Set("Mp-Reply", inbox)
	unknown.Data = valid.Data
	_, err = js.PublishMsg(t.Context(), unknown)
	require.NoError(t, err)
	reply = <-replies
	assert.Equal(t, "1", reply.Header.Get("Mp-Err"))
	assert.Contains(t, string(reply.Data), "not registered")

	require.Eventually(t, func() bool { return streamMsgs(t, js, "p") == 0 }, 10*time.Second, time.Millisecond,
		"refused messages are not delivered again")
	require.Eventually(t, func() bool {
		s := log.String()
		return strings.Contains(s, "malformed") && strings.Contains(s, "does not have")
	}, 10*time.Second, time.Millisecond)

	// The worker serves on.
	v, err = mp.Apply(t.Context(), p, square, 5)
	require.NoError(t, err)
	assert.Equal(t, 25, v)
}

func TestStorageFollowsServer(t *testing.T) {
	for _, c := range []struct {
		opts []embed.Option
		want jetstream.StorageType
	}{
		{nil, jetstream.MemoryStorage},
		{[]embed.Option{embed.StoreDir(t.TempDir())}, jetstream.FileStorage},
	} {
		srv := server(t, c.opts...)
		js := connect(t, srv)
		pool(t, srv, "p")
		_, err := cluster.NewQueue[int](t.Context(), js, "q", 0)
		require.NoError(t, err)
		for _, name := range []string{"MP_p", "MPQ_q"} {
			s, err := js.Stream(t.Context(), name)
			require.NoError(t, err)
			assert.Equal(t, c.want, s.CachedInfo().Config.Storage, name)
		}
	}
}
