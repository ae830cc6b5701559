package cluster

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mpgo/mp/backend"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A task crosses as one JetStream message whose body is the encoded
// argument, raw, and whose headers say the rest; its reply is one core
// NATS message to the subject the task names, body the encoded result or
// error. mp encodes values and errors; this package only moves bytes.
const (
	hdrVersion  = "Mp-V"        // wireVersion
	hdrFunc     = "Mp-Func"     // the registered name of the task's function
	hdrBatch    = "Mp-Batch"    // "1": the body is a chunk of Map's items
	hdrReply    = "Mp-Reply"    // the subject of the reply
	hdrDeadline = "Mp-Deadline" // the task's deadline, Unix nanoseconds
	hdrProgress = "Mp-Progress" // how often the worker reports progress, ns
	hdrErr      = "Mp-Err"      // in a reply: "1" when the body is an error
	hdrFail     = "Mp-Fail"     // in a reply: why the worker could not run the task
	hdrClaim    = "Mp-Claim"    // a request to the reply subject: may this worker run the task?
	wireVersion = "1"

	claimGo = "go" // the answer to a claim that lets the worker run the task
	claimNo = "no"
)

// envelope is a task as a worker reads it.
type envelope struct {
	req      backend.Request
	id       string // Nats-Msg-Id: submitter id "." task number
	reply    string
	deadline time.Time
	progress time.Duration
}

// errMalformed marks a message a worker cannot run.
var errMalformed = errors.New("cluster: malformed task message")

func newTaskMsg(subject string, e *envelope) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(hdrVersion, wireVersion)
	m.Header.Set(hdrFunc, e.req.Func)
	if e.req.Batch {
		m.Header.Set(hdrBatch, "1")
	}
	m.Header.Set(hdrReply, e.reply)
	m.Header.Set(jetstream.MsgIDHeader, e.id)
	if !e.deadline.IsZero() {
		m.Header.Set(hdrDeadline, strconv.FormatInt(e.deadline.UnixNano(), 10))
	}
	if e.progress > 0 {
		// Absent when there is none, as readTask takes only a positive
		// interval: a task read without one is sent on as it came.
		m.Header.Set(hdrProgress, strconv.FormatInt(int64(e.progress), 10))
	}
	m.Data = e.req.Arg
	return m
}

// msgSize is how many bytes m takes against a server's max_payload.
func msgSize(m *nats.Msg) int {
	n := len(m.Data) + len("NATS/1.0\r\n\r\n")
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// readTask decodes a task message. A message it cannot read is an error
// wrapping errMalformed; the reply subject is returned whenever the
// message names one, so that even a malformed task can be answered.
func readTask(h nats.Header, data []byte) (*envelope, error) {
	e := &envelope{reply: h.Get(hdrReply)}
	bad := func(format string, args ...any) (*envelope, error) {
		return e, fmt.Errorf("%w: "+format, append([]any{errMalformed}, args...)...)
	}
	if v := h.Get(hdrVersion); v != wireVersion {
		return bad("version %q, want %q", v, wireVersion)
	}
	if e.reply == "" {
		return bad("no %s header", hdrReply)
	}
	e.req.Func = h.Get(hdrFunc)
	if e.req.Func == "" {
		return bad("no %s header", hdrFunc)
	}
	switch h.Get(hdrBatch) {
	case "":
	case "1":
		e.req.Batch = true
	default:
		return bad("%s header %q", hdrBatch, h.Get(hdrBatch))
	}
	e.id = h.Get(jetstream.MsgIDHeader)
	if v := h.Get(hdrDeadline); v != "" {
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return bad("%s header %q", hdrDeadline, v)
		}
		e.deadline = time.Unix(0, ns)
	}
	if v := h.Get(hdrProgress); v != "" {
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ns <= 0 {
			return bad("%s header %q", hdrProgress, v)
		}
		e.progress = time.Duration(ns)
	}
	e.req.Arg = data
	return e, nil
}

func newReplyMsg(subject string, r backend.Reply) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(hdrVersion, wireVersion)
	if r.Err != nil {
		m.Header.Set(hdrErr, "1")
		m.Data = r.Err
	} else {
		m.Data = r.Value
	}
	return m
}

// newFailMsg is the reply of a worker that could not run a task at all,
// which it cannot put in mp's encoding of errors.
func newFailMsg(subject, why string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(hdrVersion, wireVersion)
	m.Header.Set(hdrFail, why)
	return m
}

// readReply returns the reply in m, or the error of a worker that could
// not run the task.
func readReply(m *nats.Msg) (backend.Reply, error) {
	if v := m.Header.Get(hdrVersion); v != wireVersion {
		return backend.Reply{}, fmt.Errorf("cluster: malformed reply: version %q, want %q", v, wireVersion)
	}
	if why := m.Header.Get(hdrFail); why != "" {
		return backend.Reply{}, errors.New(why)
	}
	if m.Header.Get(hdrErr) == "1" {
		return backend.Reply{Err: m.Data}, nil
	}
	return backend.Reply{Value: m.Data}, nil
}
