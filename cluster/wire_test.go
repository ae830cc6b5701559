package cluster

import (
	"testing"
	"time"

	"github.com/mpgo/mp/backend"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTaskRoundTrip(t *testing.T) {
	e := &envelope{
		req:      backend.Request{Func: "example.com/p.f func(context.Context, int) (int, error)", Batch: true, Arg: []byte{1, 2, 3}},
		id:       "sub.7",
		reply:    "_INBOX.x.7",
		deadline: time.Unix(0, 1234567890123),
		progress: 5 * time.Second,
	}
	m := newTaskMsg("mp.p.t.sub", e)
	got, err := readTask(m.Header, m.Data)
	require.NoError(t, err)
	assert.Equal(t, e, got)
	assert.Equal(t, len(m.Data)+len("NATS/1.0\r\n\r\n"), msgSize(&nats.Msg{Data: m.Data, Header: nats.Header{}}))
}

func TestReplyRoundTrip(t *testing.T) {
	for _, r := range []backend.Reply{{Value: []byte("v")}, {Err: []byte("e")}} {
		got, err := readReply(newReplyMsg("s", r))
		require.NoError(t, err)
		assert.Equal(t, r, got)
	}
	_, err := readReply(newFailMsg("s", "why"))
	require.EqualError(t, err, "why")
	_, err = readReply(nats.NewMsg("s"))
	require.ErrorContains(t, err, "malformed reply")
}

// FuzzReadTask feeds readTask the headers any publisher on a pool's
// subjects could send: it must refuse what it cannot read, never panic,
// and keep the reply subject whenever there is one.
func FuzzReadTask(f *testing.F) {
	f.Add("1", "f", "", "r", "", "5000", []byte("arg"))
	f.Add("1", "f", "1", "r", "123", "1", []byte{})
	f.Add("2", "", "x", "", "bad", "-1", []byte(nil))
	f.Fuzz(func(t *testing.T, version, fn, batch, reply, deadline, progress string, data []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{hdrVersion: version, hdrFunc: fn, hdrBatch: batch, hdrReply: reply, hdrDeadline: deadline, hdrProgress: progress} {
			if v != "" {
				h.Set(k, v)
			}
		}
		e, err := readTask(h, data)
		require.NotNil(t, e)
		assert.Equal(t, reply, e.reply)
		if err == nil {
			assert.Equal(t, fn, e.req.Func)
			assert.NotEmpty(t, e.reply)
			m := newTaskMsg("s", e)
			again, err := readTask(m.Header, m.Data)
			require.NoError(t, err)
			assert.Equal(t, e.req, again.req)
		} else {
			assert.ErrorIs(t, err, errMalformed)
		}
	})
}
