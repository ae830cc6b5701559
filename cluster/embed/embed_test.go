package embed_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster/embed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { mp.Main(); goleak.VerifyTestMain(m) }

func TestInProcessNoPort(t *testing.T) {
	srv, err := embed.Run(t.Context())
	require.NoError(t, err)
	defer srv.Shutdown()
	assert.Empty(t, srv.URL())
	assert.Empty(t, srv.Token())
	assert.True(t, srv.Memory())
	js, err := srv.JetStream()
	require.NoError(t, err)
	ctx := t.Context()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	ack, err := js.Publish(ctx, "s", []byte("hello"))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), ack.Sequence)
}

func TestListenRequiresToken(t *testing.T) {
	srv, err := embed.Run(t.Context(), embed.Port(0))
	require.NoError(t, err)
	defer srv.Shutdown()
	require.Regexp(t, `^nats://127\.0\.0\.1:\d+$`, srv.URL())
	require.NotEmpty(t, srv.Token())

	_, err = nats.Connect(srv.URL(), nats.NoReconnect())
	require.Error(t, err, "a client without the token must be refused")
	_, err = nats.Connect(srv.URL(), nats.Token("wrong"), nats.NoReconnect())
	require.Error(t, err)

	nc, err := nats.Connect(srv.URL(), nats.Token(srv.Token()))
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.Flush())

	// The in-process connection carries the token by itself.
	c2, err := srv.Connect()
	require.NoError(t, err)
	defer c2.Close()
	require.NoError(t, c2.Flush())
}

func TestChosenToken(t *testing.T) {
	srv, err := embed.Run(t.Context(), embed.Port(0), embed.Token("s3cret"))
	require.NoError(t, err)
	defer srv.Shutdown()
	assert.Equal(t, "s3cret", srv.Token())
	nc, err := nats.Connect(srv.URL(), nats.Token("s3cret"))
	require.NoError(t, err)
	nc.Close()
}

func TestLargePayload(t *testing.T) {
	srv, err := embed.Run(t.Context())
	require.NoError(t, err)
	defer srv.Shutdown()
	nc, err := srv.Conn()
	require.NoError(t, err)
	assert.Equal(t, int64(embed.DefaultMaxPayload), nc.MaxPayload())
	js, err := srv.JetStream()
	require.NoError(t, err)
	ctx := t.Context()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	// A 1 MiB item with headers goes through, as NATS's default limit would not allow.
	big := bytes.Repeat([]byte{7}, 1<<20)
	m := nats.NewMsg("s")
	m.Header.Set("Mp-Func", "some.task")
	m.Data = big
	_, err = js.PublishMsg(ctx, m)
	require.NoError(t, err)
	_, err = js.Publish(ctx, "s", make([]byte, embed.DefaultMaxPayload+1))
	require.ErrorIs(t, err, nats.ErrMaxPayload)
}

func TestFileStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	srv, err := embed.Run(ctx, embed.StoreDir(dir))
	require.NoError(t, err)
	assert.False(t, srv.Memory())
	js, err := srv.JetStream()
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "s", []byte("kept"))
	require.NoError(t, err)
	srv.Shutdown()

	srv, err = embed.Run(ctx, embed.StoreDir(dir))
	require.NoError(t, err)
	defer srv.Shutdown()
	js, err = srv.JetStream()
	require.NoError(t, err)
	s, err := js.Stream(ctx, "S")
	require.NoError(t, err)
	m, err := s.GetMsg(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(m.Data))
}

func TestShutdownByContextRemovesTempDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := embed.Run(ctx)
	require.NoError(t, err)
	nc, err := srv.Conn()
	require.NoError(t, err)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the server's store directory")
	cancel()
	require.Eventually(t, nc.IsClosed, 10*time.Second, time.Millisecond)
	srv.Shutdown() // waits for the shutdown the cancel started
	entries, err = os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries)
	_, err = srv.Conn()
	assert.Error(t, err)
}

func TestRunWithDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := embed.Run(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestLogf(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	srv, err := embed.Run(t.Context(), embed.Logf(func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}))
	require.NoError(t, err)
	srv.Shutdown()
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, lines)
	assert.True(t, strings.HasPrefix(lines[0], "nats: "), lines[0])
}
