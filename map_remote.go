package mp

import (
	"context"

	"github.com/mpgo/mp/backend"
	"github.com/mpgo/mp/internal/wire"
)

// remoteChunk is the unit of a Map chunk on a remote pool.
type remoteChunk[A, R any] struct {
	m      *mapState[A, R]
	lo, hi int
	r      *remoteMap[A, R]
}

// remoteMap is what the chunks of one Map call on a remote pool share.
type remoteMap[A, R any] struct {
	name   string
	header []byte
	args   batchCodec[A]
	res    batchCodec[R]
}

// startRemote starts Map on a remote pool, with n chunks of size items:
// each chunk crosses as one encoded batch. The first error stops the
// rest, and Terminate stops them with its cause.
func startRemote[A, R any](ctx context.Context, p *Pool, f Func[A, R], items []A, size, n int) (*mapState[A, R], error) {
	m := newMapState(ctx, f, items)
	if n == 0 {
		close(m.done)
		return m, nil
	}
	e, err := registered(f)
	if err != nil {
		m.cancel(nil)
		return nil, err
	}
	r := &remoteMap[A, R]{name: e.name, header: requestHeader(e.name, true, false), args: newBatchCodec[A]().as(roleArgs), res: newBatchCodec[R]().as(roleResults)}
	m.unwatch = append(m.unwatch, context.AfterFunc(p.ctx, func() { m.stop(context.Cause(p.ctx)) }))
	m.left.Store(int64(n))
	chunks := make([]remoteChunk[A, R], n)
	for i := range chunks {
		chunks[i] = remoteChunk[A, R]{m: m, lo: i * size, hi: min((i+1)*size, len(items)), r: r}
		u := &chunks[i]
		if m.stopped.Load() {
			u.fail(p, m.err)
			continue
		}
		if err := p.submit(m.ctx, u); err != nil {
			u.fail(p, p.submitError(err))
		}
	}
	return m, nil
}

func (c *remoteChunk[A, R]) run(p *Pool) bool {
	c.fail(p, errGoOnProcessPool)
	return true
}

func (c *remoteChunk[A, R]) Request() (backend.Request, error) {
	if c.m.stopped.Load() {
		return backend.Request{}, c.m.err
	}
	raw, err := c.r.args.encode(nil, nil, c.m.items[c.lo:c.hi])
	return backend.Request{Func: c.r.name, Batch: true, Arg: raw}, err
}

func (c *remoteChunk[A, R]) Context() context.Context { return c.m.ctx }
func (c *remoteChunk[A, R]) Fail(err error)           { c.fail(nil, err) }

func (c *remoteChunk[A, R]) Complete(r backend.Reply, err error) bool {
	return c.decode(nil, r.Value, replyError(c.m.ctx, r, err))
}

func (c *remoteChunk[A, R]) requestOn(cn *wire.Conn, buf []byte) (wire.Message, error) {
	if c.m.stopped.Load() {
		return wire.Message{}, c.m.err
	}
	raw, err := c.r.args.encode(cn, buf, c.m.items[c.lo:c.hi])
	return wire.Message{Header: c.r.header, Raw: raw}, err
}

func (c *remoteChunk[A, R]) completeOn(cn *wire.Conn, reply wire.Message, err error) bool {
	return c.decode(cn, reply.Raw, err)
}

// decode resolves the chunk from an encoded batch of results that arrived
// on cn.
func (c *remoteChunk[A, R]) decode(cn *wire.Conn, raw []byte, err error) bool {
	defer c.m.end()
	if err == nil {
		if err = c.r.res.decodeInto(cn, raw, c.m.results[c.lo:c.hi]); err == nil {
			return false
		}
	}
	c.m.stop(err)
	return true
}

func (c *remoteChunk[A, R]) fail(_ *Pool, err error) {
	c.m.stop(err)
	c.m.end()
}
