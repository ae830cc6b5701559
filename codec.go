package mp

import (
	"bytes"
	"context"
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"io"
	"math"
	"reflect"
	"sync"
)

// How values cross a process boundary. Most types go through encoding/gob.
// Three kinds skip it: zero-size types (gob refuses "no exported fields")
// send nothing; byte slices travel as they are, beside the frame header;
// booleans, numbers and strings, the arguments of most small tasks, use a
// fixed binary form that costs tens of nanoseconds instead of the
// microseconds a fresh gob stream spends describing the type. Each gob
// value uses its own stream, so every message carries its type
// description: a few hundred bytes and a few microseconds per struct value.

type codecKind uint8

const (
	codecGob codecKind = iota
	codecEmpty
	codecBytes
	codecBool
	codecInt
	codecUint
	codecFloat
	codecString
)

var (
	gobEncoderType    = reflect.TypeFor[gob.GobEncoder]()
	binMarshalerType  = reflect.TypeFor[encoding.BinaryMarshaler]()
	gobDecoderType    = reflect.TypeFor[gob.GobDecoder]()
	binUnmarshalerTyp = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

// kindOf picks the codec for t. A type with its own gob or binary
// marshalling always goes through gob, so that its methods run.
func kindOf(t reflect.Type) codecKind {
	if t.Kind() == reflect.Interface {
		return codecGob
	}
	for _, m := range []reflect.Type{gobEncoderType, binMarshalerType, gobDecoderType, binUnmarshalerTyp} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return codecGob
		}
	}
	if t.Size() == 0 {
		return codecEmpty
	}
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return codecBytes
		}
	case reflect.Bool:
		return codecBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return codecInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return codecUint
	case reflect.Float32, reflect.Float64:
		return codecFloat
	case reflect.String:
		return codecString
	}
	return codecGob
}

// codec encodes and decodes values of one type. The zero value is not
// usable; use codecFor.
type codec[T any] struct {
	kind codecKind
	typ  reflect.Type
}

func codecFor[T any]() codec[T] {
	t := reflect.TypeFor[T]()
	if k, ok := codecKinds.Load(t); ok {
		return codec[T]{kind: k.(codecKind), typ: t}
	}
	k := kindOf(t)
	codecKinds.Store(t, k)
	return codec[T]{kind: k, typ: t}
}

// codecKinds caches kindOf, whose method-set checks would otherwise cost
// every task of a process pool a few hundred nanoseconds.
var codecKinds sync.Map // reflect.Type → codecKind

// encode returns the wire form of v for any receiver. For a byte slice it
// returns the slice itself, without a copy.
func (c codec[T]) encode(v T) ([]byte, error) { return c.encodeOn(nil, v) }

// encodeOn returns the wire form of v for the peer of cn, which must then
// be sent on cn. Gob values of most types then carry no type description
// (see gobstream.go). cn may be nil.
func (c codec[T]) encodeOn(cn *conn, v T) ([]byte, error) {
	switch c.kind {
	case codecEmpty:
		return nil, nil
	case codecGob:
		if cn != nil && c.typ.Kind() != reflect.Interface {
			if gt := streamType(c.typ); gt != nil {
				if err := cn.defineGob(gt); err != nil {
					return nil, err
				}
				b, err := gt.encode(reflect.ValueOf(v))
				if err != nil {
					return nil, fmt.Errorf("mp: cannot encode %v: %w", c.typ, err)
				}
				return b, nil
			}
		}
		buf := bytes.NewBuffer([]byte{gobFresh})
		enc := gob.NewEncoder(buf)
		var err error
		if c.typ.Kind() == reflect.Interface {
			// gob sends an interface value only through a pointer to it;
			// the concrete type must be gob.Register'ed.
			err = enc.EncodeValue(reflect.ValueOf(&v).Elem())
		} else {
			err = enc.Encode(v)
		}
		if err != nil {
			return nil, fmt.Errorf("mp: cannot encode %v: %w", c.typ, err)
		}
		return buf.Bytes(), nil
	}
	rv := reflect.ValueOf(v)
	switch c.kind {
	case codecBytes:
		return rv.Bytes(), nil
	case codecBool:
		if rv.Bool() {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	case codecInt:
		return binary.AppendVarint(nil, rv.Int()), nil
	case codecUint:
		return binary.AppendUvarint(nil, rv.Uint()), nil
	case codecFloat:
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(rv.Float())), nil
	default: // codecString
		return []byte(rv.String()), nil
	}
}

// decode is the inverse of encode. It may keep b: a decoded byte slice is
// b itself.
func (c codec[T]) decode(b []byte) (T, error) { return c.decodeOn(nil, b) }

// decodeOn is the inverse of encodeOn, for a payload that arrived on cn.
func (c codec[T]) decodeOn(cn *conn, b []byte) (T, error) {
	var v T
	rv := reflect.ValueOf(&v).Elem()
	bad := func() (T, error) {
		var zero T
		return zero, fmt.Errorf("mp: cannot decode %v from %d bytes", c.typ, len(b))
	}
	switch c.kind {
	case codecEmpty:
	case codecGob:
		var err error
		switch {
		case len(b) > 0 && b[0] == gobFresh:
			err = gob.NewDecoder(bytes.NewReader(b[1:])).DecodeValue(rv)
		case len(b) > 0 && b[0] == gobStreamed && cn != nil:
			err = cn.decodeStreamed(b[1:], rv.Addr())
		default:
			return bad()
		}
		if err != nil {
			var zero T
			return zero, fmt.Errorf("mp: cannot decode %v: %w", c.typ, err)
		}
	case codecBytes:
		// As with gob, an empty slice arrives as nil.
		if len(b) > 0 {
			rv.SetBytes(b)
		}
	case codecBool:
		if len(b) != 1 {
			return bad()
		}
		rv.SetBool(b[0] == 1)
	case codecInt:
		n, k := binary.Varint(b)
		if k != len(b) || k <= 0 || rv.OverflowInt(n) {
			return bad()
		}
		rv.SetInt(n)
	case codecUint:
		n, k := binary.Uvarint(b)
		if k != len(b) || k <= 0 || rv.OverflowUint(n) {
			return bad()
		}
		rv.SetUint(n)
	case codecFloat:
		if len(b) != 8 {
			return bad()
		}
		rv.SetFloat(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case codecString:
		rv.SetString(string(b))
	}
	return v, nil
}

// sentinels are errors whose identity survives the crossing, so that
// errors.Is(err, mp.ErrClosed) or errors.Is(err, context.Canceled) holds in
// the parent for an error returned in a child.
var sentinels = []error{
	ErrClosed, ErrFull, ErrEmpty, ErrTerminated, ErrNotRegistered, ErrLost,
	context.Canceled, context.DeadlineExceeded, io.EOF, io.ErrUnexpectedEOF,
}

// wireError is the form in which a task's error crosses back.
type wireError struct {
	Msg      string
	Panic    bool
	Stack    []byte
	Sentinel int    // 1 + index in sentinels of the first one in the chain, or 0
	Typed    []byte // gob of typedError for the first gob-registered error in the chain
}

// sentinelIndex returns 1 + the index of e in sentinels, or 0.
func sentinelIndex(e error) int {
	for i, s := range sentinels {
		if e == s {
			return i + 1
		}
	}
	return 0
}

// typedError carries an error through gob as an interface value, which gob
// can encode only when the concrete type was registered with gob.Register.
type typedError struct{ E error }

func encodeError(err error) []byte {
	w := wireError{Msg: err.Error()}
	if pe, ok := err.(*PanicError); ok {
		// The panic value crosses as its text, as DESIGN promises.
		w = wireError{Panic: true, Msg: fmt.Sprint(pe.Value), Stack: pe.Stack}
		err = nil
	}
	// Walk the whole error tree (errors.Join and %w with several
	// operands included) for the first sentinel and the first error whose
	// concrete type gob can send.
	stack := []error{err}
	for len(stack) > 0 && (w.Sentinel == 0 || w.Typed == nil) {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if e == nil {
			continue
		}
		if i := sentinelIndex(e); i > 0 {
			if w.Sentinel == 0 {
				w.Sentinel = i
			}
		} else if w.Typed == nil {
			var buf bytes.Buffer
			// Unregistered concrete types fail here; that error is the
			// signal to fall back to the message alone.
			if gob.NewEncoder(&buf).Encode(typedError{e}) == nil {
				w.Typed = buf.Bytes()
				continue
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			stack = append(stack, u.Unwrap())
		case interface{ Unwrap() []error }:
			for i := len(u.Unwrap()) - 1; i >= 0; i-- {
				stack = append(stack, u.Unwrap()[i])
			}
		}
	}
	var buf bytes.Buffer
	if gob.NewEncoder(&buf).Encode(&w) != nil {
		// Only the message and stack are left; they always encode.
		buf.Reset()
		_ = gob.NewEncoder(&buf).Encode(&wireError{Msg: w.Msg, Panic: w.Panic, Stack: w.Stack})
	}
	return buf.Bytes()
}

func decodeError(b []byte) error {
	var w wireError
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&w); err != nil {
		return fmt.Errorf("mp: cannot decode an error from the child: %w", err)
	}
	var typed, sentinel error
	if w.Typed != nil {
		var te typedError
		if gob.NewDecoder(bytes.NewReader(w.Typed)).Decode(&te) == nil {
			typed = te.E
		}
	}
	if w.Sentinel > 0 && w.Sentinel <= len(sentinels) {
		sentinel = sentinels[w.Sentinel-1]
	}
	var inner error
	switch {
	case typed == nil && sentinel == nil:
	case typed != nil && sentinel == nil:
		inner = typed
	case typed == nil:
		inner = sentinel
	default:
		inner = &remoteError{msg: typed.Error(), causes: []error{typed, sentinel}}
	}
	if w.Panic {
		return &PanicError{Value: w.Msg, Stack: w.Stack}
	}
	if inner != nil && inner.Error() == w.Msg {
		return inner
	}
	return &remoteError{msg: w.Msg, causes: []error{inner}}
}

// remoteError is an error from a child: its message, and the parts of its
// chain that could be rebuilt in this process.
type remoteError struct {
	msg    string
	causes []error
}

func (e *remoteError) Error() string { return e.msg }

func (e *remoteError) Unwrap() []error {
	if len(e.causes) == 1 && e.causes[0] == nil {
		return nil
	}
	return e.causes
}
