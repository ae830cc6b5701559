package wire

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"
)

// Gob streams shared across messages. A fresh gob stream per message
// describes the value's type before the value: several hundred bytes and
// about 10 µs to write and read for a small struct. For values sent on a
// connection, the type description instead crosses once per connection, in
// a kindGobType frame, and each message carries only the value, encoded by
// an encoder (and decoded by a decoder) that has already seen the type.
//
// This is sound only if every encoder of a type describes it with the same
// bytes and no message adds type descriptions of its own. The first holds
// because gob's type IDs are global to the process; the second fails for
// types that contain interfaces, whose concrete types are described when
// they first appear, so those types keep fresh streams.

// GobType is a type that can be streamed, with its description and a free
// list of encoders that have already described it.
type GobType struct {
	id   uint64 // this process's number for the type, sent to peers
	blob []byte // the description and a zero value, as a fresh encoder writes them

	mu   sync.Mutex
	free []*gobEnc
}

type gobEnc struct {
	buf bytes.Buffer
	enc *gob.Encoder
}

var gobTypes = struct {
	mu     sync.Mutex
	byType map[reflect.Type]*GobType // nil entry: not streamable
	nextID uint64
}{byType: map[reflect.Type]*GobType{}}

// StreamType returns the stream state of t, or nil if t must use fresh
// streams.
func StreamType(t reflect.Type) *GobType {
	gobTypes.mu.Lock()
	defer gobTypes.mu.Unlock()
	if gt, ok := gobTypes.byType[t]; ok {
		return gt
	}
	var gt *GobType
	if streamable(t, map[reflect.Type]bool{}) {
		base := t
		for base.Kind() == reflect.Pointer {
			base = base.Elem()
		}
		e := &gobEnc{}
		e.enc = gob.NewEncoder(&e.buf)
		// A zero value makes the encoder describe the type; pointers are
		// primed with what they point to, which is what gob sends.
		if e.enc.EncodeValue(reflect.New(base).Elem()) == nil {
			gobTypes.nextID++
			gt = &GobType{id: gobTypes.nextID, blob: bytes.Clone(e.buf.Bytes())}
			e.buf.Reset()
			gt.free = append(gt.free, e)
		}
	}
	gobTypes.byType[t] = gt
	return gt
}

// streamable reports whether gob describes every value of t the same way:
// no interface anywhere inside, except behind the type's own marshalling
// methods, which gob sends as opaque bytes.
func streamable(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true
	}
	seen[t] = true
	for _, m := range []reflect.Type{reflect.TypeFor[gob.GobEncoder](), reflect.TypeFor[encoding.BinaryMarshaler]()} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	switch t.Kind() {
	case reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return false
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return streamable(t.Elem(), seen)
	case reflect.Map:
		return streamable(t.Key(), seen) && streamable(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && !streamable(f.Type, seen) {
				return false
			}
		}
	}
	return true
}

// Encode writes v as a value-only message of an already described type.
func (gt *GobType) Encode(v reflect.Value) ([]byte, error) {
	gt.mu.Lock()
	var e *gobEnc
	if n := len(gt.free); n > 0 {
		e, gt.free = gt.free[n-1], gt.free[:n-1]
	}
	gt.mu.Unlock()
	if e == nil {
		e = &gobEnc{}
		e.enc = gob.NewEncoder(&e.buf)
		// Describe the type to this encoder, then forget the bytes: the
		// peer already has the same description.
		if err := e.enc.EncodeValue(reflect.New(baseType(v.Type())).Elem()); err != nil {
			return nil, err
		}
		e.buf.Reset()
	}
	// The marker and type number go first in the encoder's own buffer, so
	// that a large value can be handed over without a copy.
	var pre [1 + binary.MaxVarintLen64]byte
	pre[0] = GobStreamed
	e.buf.Write(binary.AppendUvarint(pre[:1], gt.id))
	if err := e.enc.EncodeValue(v); err != nil {
		// The encoder's state is unknown after an error; drop it.
		return nil, err
	}
	var out []byte
	if e.buf.Len() >= handOver {
		out = e.buf.Bytes()
		e.buf = bytes.Buffer{}
	} else {
		out = bytes.Clone(e.buf.Bytes())
		e.buf.Reset()
	}
	gt.mu.Lock()
	gt.free = append(gt.free, e)
	gt.mu.Unlock()
	return out, nil
}

// handOver is the size of encoding from which Encode gives the caller the
// encoder's buffer rather than a copy of it: the copy would cost more than
// the allocation the next value then makes.
const handOver = 64 << 10

func baseType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// The first byte of a gob-encoded payload says which kind follows.
const (
	GobFresh    byte = iota // a whole gob stream: description and value
	GobStreamed             // uvarint type number, then the value only
)

// gobTable is a connection's half of the streams: the types it has
// described to the peer, and the descriptions the peer sent, each with
// decoders that have read it.
type gobTable struct {
	mu     sync.Mutex
	sent   map[uint64]bool
	remote map[uint64]*remoteGob
}

type remoteGob struct {
	blob []byte
	free []*gobDec
}

type gobDec struct {
	src bytes.Reader
	dec *gob.Decoder
}

// DefineGob makes sure the peer has gt's description before any value of
// it: the kindGobType frame is queued before encode returns, so it
// precedes every frame carrying such a value.
func (c *Conn) DefineGob(gt *GobType) error {
	c.gobs.mu.Lock()
	defer c.gobs.mu.Unlock()
	if c.gobs.sent[gt.id] {
		return nil
	}
	if err := c.w.WriteFrame(&Frame{Kind: KindGobType, ID: gt.id, Raw: gt.blob}, false); err != nil {
		return err
	}
	if c.gobs.sent == nil {
		c.gobs.sent = map[uint64]bool{}
	}
	c.gobs.sent[gt.id] = true
	return nil
}

// gobDefined records a description the peer sent; it runs on the reader
// goroutine, so it precedes the decoding of any value that uses it.
// LearnGob records gt as described by the peer, as if the peer's frame
// describing it had arrived: for benchmarks that play the peer.
func (c *Conn) LearnGob(gt *GobType) { c.gobDefined(gt.id, gt.blob) }

func (c *Conn) gobDefined(id uint64, blob []byte) {
	c.gobs.mu.Lock()
	defer c.gobs.mu.Unlock()
	if c.gobs.remote == nil {
		c.gobs.remote = map[uint64]*remoteGob{}
	}
	c.gobs.remote[id] = &remoteGob{blob: blob}
}

// DecodeStreamed decodes a value-only message into rv, a pointer.
func (c *Conn) DecodeStreamed(b []byte, rv reflect.Value) error {
	id, n := binary.Uvarint(b)
	if n <= 0 {
		return fmt.Errorf("%w: bad gob type number", ErrMalformed)
	}
	c.gobs.mu.Lock()
	rg := c.gobs.remote[id]
	var d *gobDec
	if rg != nil {
		if k := len(rg.free); k > 0 {
			d, rg.free = rg.free[k-1], rg.free[:k-1]
		}
	}
	c.gobs.mu.Unlock()
	if rg == nil {
		return fmt.Errorf("%w: value of undescribed gob type %d", ErrMalformed, id)
	}
	if d == nil {
		d = &gobDec{}
		d.src.Reset(rg.blob)
		d.dec = gob.NewDecoder(&d.src)
		if err := d.dec.DecodeValue(reflect.New(rv.Type().Elem())); err != nil {
			return err
		}
	}
	d.src.Reset(b[n:])
	if err := d.dec.DecodeValue(rv); err != nil {
		return err
	}
	c.gobs.mu.Lock()
	rg.free = append(rg.free, d)
	c.gobs.mu.Unlock()
	return nil
}
