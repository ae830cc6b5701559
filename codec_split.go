package mp

import (
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/mpgo/mp/internal/wire"
)

// Large byte fields of struct values travel beside their gob encoding.
// Gob copies a []byte field into its message when it encodes and into a
// fresh slice when it decodes, so a struct carrying 1 MiB of data cost
// three copies on the way out and two on the way in, besides the one
// through the socket; a []byte item costs none of them. A struct value
// whose top-level []byte fields hold at least splitMin bytes in all is
// therefore sent as
//
//	[gobSplit][uvarint k][k × (uvarint field index, uvarint length)]
//	[uvarint length of the gob][gob of the value with those fields nil]
//	[the fields' bytes, in order]
//
// The receiver decodes the gob and points each field into the message,
// which the reader allocated for it alone, as a []byte item is: the bytes
// are copied once on each side, out of the sender's slice into the
// socket and out of the socket into the slice the program gets.

// gobSplit is the first byte of a split value, after wire's markers of a
// plain gob value.
const gobSplit = wire.GobStreamed + 1

// splitMin is the number of bytes in a struct value's []byte fields from
// which they travel beside its gob: below it, the copies cost less than
// the shallow copy of the value that splitting takes.
const splitMin = 32 << 10

// splitFields returns the indices of the fields of t, a struct type that
// gob encodes field by field, that can travel beside its gob: exported,
// not embedded, plain byte slices without marshalling methods of their
// own. It returns nil for any other type.
func splitFields(t reflect.Type) []int {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var idx []int
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous || f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Uint8 {
			continue
		}
		plain := true
		for _, m := range marshalerTypes {
			if f.Type.Implements(m) || reflect.PointerTo(f.Type).Implements(m) {
				plain = false
			}
		}
		if plain {
			idx = append(idx, i)
		}
	}
	return idx
}

// splitOff returns a copy of v with its split fields nil and the fields'
// contents, when they hold splitMin bytes or more; otherwise an invalid
// Value.
func (c codec[T]) splitOff(v T) (reflect.Value, [][]byte) {
	rv := reflect.ValueOf(v)
	total := 0
	for _, i := range c.split {
		total += rv.Field(i).Len()
	}
	if total < splitMin {
		return reflect.Value{}, nil
	}
	rest := reflect.New(c.typ).Elem()
	rest.Set(rv)
	fields := make([][]byte, len(c.split))
	for j, i := range c.split {
		fields[j] = rv.Field(i).Bytes()
		rest.Field(i).SetZero()
	}
	return rest, fields
}

// splitHead returns the wire form of a split value up to the contents of
// its fields: inner is the gob of the rest of it, fields the contents of
// the fields idx, which follow.
func splitHead(inner []byte, idx []int, fields [][]byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*(2*len(idx)+2)+len(inner))
	b = append(b, gobSplit)
	b = binary.AppendUvarint(b, uint64(len(idx)))
	for j, i := range idx {
		b = binary.AppendUvarint(b, uint64(i))
		b = binary.AppendUvarint(b, uint64(len(fields[j])))
	}
	b = binary.AppendUvarint(b, uint64(len(inner)))
	return append(b, inner...)
}

// splitParts are the fields of a split value as received: their indices
// and contents, which point into the message.
type splitParts struct {
	idx    []int
	fields [][]byte
}

// cutSplit parses b, a split value, into the gob of its rest and its
// fields, which must be split fields of c's type; ok is false if b is
// malformed.
func (c codec[T]) cutSplit(b []byte) (inner []byte, p splitParts, ok bool) {
	h := hdrReader{b: b[1:]}
	k := h.int()
	if h.bad || k > len(c.split) {
		return nil, p, false
	}
	p.idx, p.fields = make([]int, k), make([][]byte, k)
	lens := make([]int, k)
	for j := range k {
		p.idx[j], lens[j] = h.int(), h.int()
		if j > 0 && p.idx[j] <= p.idx[j-1] {
			return nil, p, false
		}
	}
	n := h.int()
	if h.bad || n > len(h.b) {
		return nil, p, false
	}
	inner, rest := h.b[:n:n], h.b[n:]
	for j, i := range p.idx {
		if !c.isSplit(i) || lens[j] > len(rest) {
			return nil, p, false
		}
		p.fields[j], rest = rest[:lens[j]:lens[j]], rest[lens[j]:]
	}
	return inner, p, len(rest) == 0
}

func (c codec[T]) isSplit(i int) bool {
	for _, j := range c.split {
		if i == j {
			return true
		}
	}
	return false
}

// set points rv's split fields at their received contents. As gob does,
// it leaves an empty field nil.
func (p splitParts) set(rv reflect.Value) {
	for j, i := range p.idx {
		if len(p.fields[j]) > 0 {
			rv.Field(i).SetBytes(p.fields[j])
		}
	}
}

// encodedSize returns the size of v's wire form, for a check before v is
// sent. For a gob value it encodes v, which runs the value's marshalling
// methods: the caller recovers their panics. The contents of split fields
// are counted, not copied.
func (c codec[T]) encodedSize(v T) (int, error) {
	switch c.kind {
	case codecBytes, codecString:
		return reflect.ValueOf(v).Len(), nil
	case codecGob:
		return c.gobSize(v)
	default:
		// The fixed encodings of numbers cannot fail and are small.
		return 0, nil
	}
}

// gobSize is encodedSize for a gob value. It is a function of its own
// because it takes v's address, which moves v to the heap: the other
// kinds must not pay for that.
func (c codec[T]) gobSize(v T) (int, error) {
	if c.typ.Kind() == reflect.Interface {
		b, err := c.gobValue(nil, reflect.ValueOf(&v).Elem())
		return len(b), err
	}
	rv, extra := reflect.ValueOf(v), 0
	if c.split != nil {
		if rest, fields := c.splitOff(v); rest.IsValid() {
			rv = rest
			for _, f := range fields {
				extra += len(f)
			}
		}
	}
	if gt := wire.StreamType(c.typ); gt != nil {
		// The value-only form, which the item will take on a connection,
		// without the cost of a fresh stream's type description.
		b, err := gt.Encode(rv)
		if err != nil {
			return 0, fmt.Errorf("mp: cannot encode %v: %w", c.typ, err)
		}
		return len(b) + extra, nil
	}
	b, err := c.gobValue(nil, rv)
	return len(b) + extra, err
}
