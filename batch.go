package mp

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"

	"github.com/mpgo/mp/internal/wire"
)

// batchCodec encodes a batch of values as one payload: numbers and
// booleans packed one after another, strings, byte slices and zero-size
// values with their lengths, other types as one gob of the slice, so that
// a type is described once per batch at most.
type batchCodec[T any] struct {
	item  codec[T]
	slice codec[[]T]
}

func newBatchCodec[T any]() batchCodec[T] {
	return batchCodec[T]{item: codecFor[T](), slice: codecFor[[]T]()}
}

// as returns bc for values that play role, as codec.as does.
func (bc batchCodec[T]) as(role string) batchCodec[T] {
	return batchCodec[T]{item: bc.item.as(role), slice: bc.slice.as(role)}
}

// encode appends the batch vs to buf, unless it goes through gob.
func (bc batchCodec[T]) encode(c *wire.Conn, buf []byte, vs []T) ([]byte, error) {
	k := bc.item.kind
	if k == codecGob {
		return bc.slice.encodeOn(c, vs)
	}
	b := binary.AppendUvarint(buf, uint64(len(vs)))
	rv := reflect.ValueOf(vs)
	for i := range vs {
		switch k {
		case codecInt:
			b = binary.AppendVarint(b, rv.Index(i).Int())
		case codecUint:
			b = binary.AppendUvarint(b, rv.Index(i).Uint())
		case codecFloat:
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(rv.Index(i).Float()))
		case codecBool:
			if rv.Index(i).Bool() {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		default:
			e, err := bc.item.encodeOn(c, vs[i])
			if err != nil {
				return nil, err
			}
			b = binary.AppendUvarint(b, uint64(len(e)))
			b = append(b, e...)
		}
	}
	return b, nil
}

func (bc batchCodec[T]) malformed() error {
	return fmt.Errorf("mp: malformed batch of %v", bc.item.typ)
}

func (bc batchCodec[T]) decode(c *wire.Conn, b []byte) ([]T, error) {
	if bc.item.kind == codecGob {
		return bc.slice.decodeOn(c, b)
	}
	n, m := binary.Uvarint(b)
	if m <= 0 || n > uint64(len(b)) {
		return nil, bc.malformed()
	}
	out := make([]T, n)
	return out, bc.decodeInto(c, b, out)
}

// decodeInto decodes a batch of exactly len(out) values into out.
func (bc batchCodec[T]) decodeInto(c *wire.Conn, b []byte, out []T) error {
	k := bc.item.kind
	if k == codecGob {
		vs, err := bc.slice.decodeOn(c, b)
		if err == nil && len(vs) != len(out) {
			err = fmt.Errorf("mp: worker returned %d results for %d items", len(vs), len(out))
		}
		copy(out, vs)
		return err
	}
	n, m := binary.Uvarint(b)
	if m <= 0 || n != uint64(len(out)) {
		return fmt.Errorf("mp: worker returned a batch that does not hold %d results", len(out))
	}
	b = b[m:]
	rv := reflect.ValueOf(out)
	for i := range out {
		switch k {
		case codecInt:
			x, m := binary.Varint(b)
			if m <= 0 || rv.Index(i).OverflowInt(x) {
				return bc.malformed()
			}
			rv.Index(i).SetInt(x)
			b = b[m:]
		case codecUint:
			x, m := binary.Uvarint(b)
			if m <= 0 || rv.Index(i).OverflowUint(x) {
				return bc.malformed()
			}
			rv.Index(i).SetUint(x)
			b = b[m:]
		case codecFloat:
			if len(b) < 8 {
				return bc.malformed()
			}
			rv.Index(i).SetFloat(math.Float64frombits(binary.BigEndian.Uint64(b)))
			b = b[8:]
		case codecBool:
			if len(b) < 1 {
				return bc.malformed()
			}
			rv.Index(i).SetBool(b[0] == 1)
			b = b[1:]
		default:
			l, m := binary.Uvarint(b)
			if m <= 0 || l > uint64(len(b)-m) {
				return bc.malformed()
			}
			v, err := bc.item.decodeOn(c, b[m:m+int(l)])
			if err != nil {
				return err
			}
			out[i] = v
			b = b[m+int(l):]
		}
	}
	return nil
}

// batchRunner returns the run of a registered task's batch form: decode
// the arguments, run the task on each in turn until one fails or ctx is
// done, and encode the results.
func batchRunner[A, R any](f Func[A, R], name string) func(ctx context.Context, c *wire.Conn, arg []byte) ([]byte, error) {
	ac, rc := newBatchCodec[A]().as(roleArgs+" of "+name), newBatchCodec[R]().as(roleResults+" of "+name)
	return func(ctx context.Context, c *wire.Conn, arg []byte) ([]byte, error) {
		items, err := ac.decode(c, arg)
		if err != nil {
			return nil, err
		}
		out := make([]R, len(items))
		for i := range items {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if out[i], err = callTask(ctx, f, items[i]); err != nil {
				return nil, err
			}
		}
		b, err := rc.encode(c, nil, out)
		if err != nil {
			return nil, unencodable("results of "+name, err)
		}
		return b, nil
	}
}
