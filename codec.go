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
	"runtime/debug"
	"slices"
	"sync"
	"unsafe"

	"github.com/mpgo/mp/internal/wire"
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
	// marshalerTypes are the interfaces through which a type marshals
	// itself for gob.
	marshalerTypes = []reflect.Type{gobEncoderType, binMarshalerType, gobDecoderType, binUnmarshalerTyp}
)

// kindOf picks the codec for t. A type with its own gob or binary
// marshalling always goes through gob, so that its methods run.
func kindOf(t reflect.Type) codecKind {
	if t.Kind() == reflect.Interface {
		return codecGob
	}
	for _, m := range marshalerTypes {
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
	// split lists the fields of a struct type that large values send
	// beside their gob encoding (see codec_split.go).
	split []int
	// role says what the values are ("the result"), for the error of a
	// panic in their marshalling methods; empty for any value.
	role string
}

// as returns c for values that play role, such as "the argument".
func (c codec[T]) as(role string) codec[T] {
	c.role = role
	return c
}

// The roles of the values a task's codecs carry.
const (
	roleArg     = "the argument"
	roleResult  = "the result"
	roleArgs    = "the arguments"
	roleResults = "the results"
)

// recoverHook is deferred around code that runs the user's marshalling
// methods (GobEncode, MarshalBinary, UnmarshalText, ...). Their panic must
// fail the one value they were called for, not the process: in a parent
// they run on mp's own goroutines, where nobody else could recover it, and
// in a child the panic would end the process with exit status 2 and the
// parent would learn nothing of it. It becomes a *PanicError that says
// what was under way, returned through *err.
func recoverHook(err *error, op string, typ reflect.Type, role string) {
	if v := recover(); v != nil {
		what := typ.String()
		if role != "" {
			what = role + " (" + what + ")"
		}
		*err = &PanicError{Value: v, Stack: debug.Stack(), during: op + " " + what}
	}
}

// codecFor returns the codec of T.
func codecFor[T any]() codec[T] {
	t := reflect.TypeFor[T]()
	if k, ok := codecKinds.Load(t); ok {
		ci := k.(*codecInfo)
		return codec[T]{kind: ci.kind, typ: t, split: ci.split}
	}
	ci := &codecInfo{kind: kindOf(t)}
	if ci.kind == codecGob {
		ci.split = splitFields(t)
	}
	codecKinds.Store(t, ci)
	return codec[T]{kind: ci.kind, typ: t, split: ci.split}
}

// codecInfo is what codecFor learns of a type once.
type codecInfo struct {
	kind  codecKind
	split []int
}

// codecKinds caches kindOf and splitFields, whose method-set checks would
// otherwise cost every task of a process pool a few hundred nanoseconds.
var codecKinds sync.Map // reflect.Type → *codecInfo

// encode returns the wire form of v for any receiver. For a byte slice it
// returns the slice itself, without a copy.
func (c codec[T]) encode(v T) ([]byte, error) { return c.encodeOn(nil, v) }

// encodeOn returns the wire form of v for the peer of cn, which must then
// be sent on cn. Gob values of most types then carry no type description
// (see gobstream.go). cn may be nil.
func (c codec[T]) encodeOn(cn *wire.Conn, v T) ([]byte, error) {
	b, more, err := c.encodeParts(cn, v)
	if err != nil || len(more) == 0 {
		return b, err
	}
	return slices.Concat(append([][]byte{b}, more...)...), nil
}

// encodeParts is encodeOn for a sender that can send the wire form in
// pieces, b followed by more (see wire.Message.More): the large fields of
// a struct are then sent from the value's own memory.
func (c codec[T]) encodeParts(cn *wire.Conn, v T) (b []byte, more [][]byte, err error) {
	switch c.kind {
	case codecEmpty:
		return nil, nil, nil
	case codecGob:
		return c.encodeGob(cn, v)
	}
	b, err = c.encodeFixed(v)
	return b, nil, err
}

// ownBytes reports whether the encoding of a value is the value's own
// memory, uncopied: that of a []byte or a string (see encodeFixed).
func (c codec[T]) ownBytes() bool { return c.kind == codecBytes || c.kind == codecString }

// encodeFixed is encodeOn for the kinds that do not go through gob.
func (c codec[T]) encodeFixed(v T) ([]byte, error) {
	rv := reflect.ValueOf(v)
	switch c.kind {
	case codecBytes:
		return rv.Bytes(), nil
	case codecString:
		// The string's own bytes, uncopied: whoever sends them only reads
		// them, as it does a []byte value's.
		s := rv.String()
		return unsafe.Slice(unsafe.StringData(s), len(s)), nil
	case codecBool:
		if rv.Bool() {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	case codecInt:
		return binary.AppendVarint(nil, rv.Int()), nil
	case codecUint:
		return binary.AppendUvarint(nil, rv.Uint()), nil
	default: // codecFloat
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(rv.Float())), nil
	}
}

// encodeGob is encodeOn for a gob value: the only kind whose encoding
// runs methods of the user's.
func (c codec[T]) encodeGob(cn *wire.Conn, v T) (b []byte, more [][]byte, err error) {
	defer recoverHook(&err, "encoding", c.typ, c.role)
	if c.split != nil {
		if rest, fields := c.splitOff(v); rest.IsValid() {
			inner, err := c.gobValue(cn, rest)
			if err != nil {
				return nil, nil, err
			}
			return splitHead(inner, c.split, fields), fields, nil
		}
	}
	if c.typ.Kind() == reflect.Interface {
		// gob sends an interface value only through a pointer to it;
		// the concrete type must be gob.Register'ed.
		b, err = c.gobValue(nil, reflect.ValueOf(&v).Elem())
	} else {
		b, err = c.gobValue(cn, reflect.ValueOf(v))
	}
	return b, nil, err
}

// gobValue encodes rv, whose type is c's, through gob: value only for the
// peer of cn when the type streams, a fresh stream otherwise.
func (c codec[T]) gobValue(cn *wire.Conn, rv reflect.Value) ([]byte, error) {
	if cn != nil && c.typ.Kind() != reflect.Interface {
		if gt := wire.StreamType(c.typ); gt != nil {
			if err := cn.DefineGob(gt); err != nil {
				return nil, err
			}
			b, err := gt.Encode(rv)
			if err != nil {
				return nil, fmt.Errorf("mp: cannot encode %v: %w", c.typ, err)
			}
			return b, nil
		}
	}
	buf := bytes.NewBuffer([]byte{wire.GobFresh})
	if err := gob.NewEncoder(buf).EncodeValue(rv); err != nil {
		return nil, fmt.Errorf("mp: cannot encode %v: %w", c.typ, err)
	}
	return buf.Bytes(), nil
}

// decode is the inverse of encode. It may keep b: a decoded byte slice is
// b itself.
func (c codec[T]) decode(b []byte) (T, error) { return c.decodeOn(nil, b) }

// decodeOn is the inverse of encodeOn, for a payload that arrived on cn.
func (c codec[T]) decodeOn(cn *wire.Conn, b []byte) (T, error) {
	var v T
	rv := reflect.ValueOf(&v).Elem()
	bad := func() (T, error) {
		var zero T
		return zero, fmt.Errorf("mp: cannot decode %v from %d bytes", c.typ, len(b))
	}
	switch c.kind {
	case codecEmpty:
	case codecGob:
		inner, fields := b, splitParts{}
		if len(b) > 0 && b[0] == gobSplit && c.split != nil {
			var ok bool
			if inner, fields, ok = c.cutSplit(b); !ok {
				return bad()
			}
		}
		if len(inner) == 0 || (inner[0] != wire.GobFresh && (inner[0] != wire.GobStreamed || cn == nil)) {
			return bad()
		}
		if err := c.decodeGob(cn, inner, rv); err != nil {
			var zero T
			return zero, err
		}
		fields.set(rv)
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
		if len(b) >= largeItem {
			// A large string keeps the bytes it arrived in, which nothing
			// else holds: decoding it costs no copy.
			rv.SetString(unsafe.String(&b[0], len(b)))
		} else {
			rv.SetString(string(b))
		}
	}
	return v, nil
}

// decodeGob is decodeOn for a gob payload, into rv: the only kind whose
// decoding runs methods of the user's.
func (c codec[T]) decodeGob(cn *wire.Conn, b []byte, rv reflect.Value) (err error) {
	defer recoverHook(&err, "decoding", c.typ, c.role)
	if b[0] == wire.GobFresh {
		err = gob.NewDecoder(bytes.NewReader(b[1:])).DecodeValue(rv)
	} else {
		err = cn.DecodeStreamed(b[1:], rv.Addr())
	}
	if err != nil {
		return fmt.Errorf("mp: cannot decode %v: %w", c.typ, err)
	}
	return nil
}

// unencodable is the error of a task's result, what, that could not be
// encoded in a child. A panic in the result's own methods stays the
// *PanicError, which says already what was encoded, so that it crosses to
// the parent as a panic.
func unencodable(what string, err error) error {
	if _, ok := err.(*PanicError); ok {
		return err
	}
	return fmt.Errorf("mp: %s: %w", what, err)
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
	During   string // what was under way when the panic came, if not the task
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
	// fmt rather than err.Error(): fmt recovers a panic in the user's
	// Error method, which would otherwise end the child.
	w := wireError{Msg: fmt.Sprint(err)}
	if pe, ok := err.(*PanicError); ok {
		// The panic value crosses as its text, as DESIGN promises.
		w = wireError{Panic: true, Msg: fmt.Sprint(pe.Value), Stack: pe.Stack, During: pe.during}
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
			if b := encodeTyped(e); b != nil {
				w.Typed = b
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
		_ = gob.NewEncoder(&buf).Encode(&wireError{Msg: w.Msg, Panic: w.Panic, Stack: w.Stack, During: w.During})
	}
	return buf.Bytes()
}

// encodeTyped returns the gob of typedError{e}, or nil if e's concrete type
// cannot cross: it is not gob-registered (gob's error is the signal to fall
// back to the message alone), or its own GobEncode failed or panicked.
func encodeTyped(e error) (b []byte) {
	defer func() {
		if recover() != nil {
			b = nil
		}
	}()
	var buf bytes.Buffer
	if gob.NewEncoder(&buf).Encode(typedError{e}) != nil {
		return nil
	}
	return buf.Bytes()
}

// decodeTyped rebuilds the error that encodeTyped sent, and returns its
// message with it, or nil if it cannot be rebuilt. The error's own methods
// (GobDecode, Error) run here, on the parent's connection reader, so a
// panic in them must lose only the error's type, never the process.
func decodeTyped(b []byte) (msg string, e error) {
	defer func() {
		if recover() != nil {
			msg, e = "", nil
		}
	}()
	var te typedError
	if gob.NewDecoder(bytes.NewReader(b)).Decode(&te) != nil || te.E == nil {
		return "", nil
	}
	return te.E.Error(), te.E
}

func decodeError(b []byte) error {
	var w wireError
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&w); err != nil {
		return fmt.Errorf("mp: cannot decode an error from the child: %w", err)
	}
	if w.Panic {
		return &PanicError{Value: w.Msg, Stack: w.Stack, during: w.During}
	}
	var typed, sentinel error
	var typedMsg string
	if w.Typed != nil {
		typedMsg, typed = decodeTyped(w.Typed)
	}
	if w.Sentinel > 0 && w.Sentinel <= len(sentinels) {
		sentinel = sentinels[w.Sentinel-1]
	}
	var inner error
	innerMsg := typedMsg
	switch {
	case typed == nil && sentinel == nil:
	case typed != nil && sentinel == nil:
		inner = typed
	case typed == nil:
		inner, innerMsg = sentinel, sentinel.Error()
	default:
		inner = &remoteError{msg: typedMsg, causes: []error{typed, sentinel}}
	}
	if inner != nil && innerMsg == w.Msg {
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

// errorCodec is the error codec of mp's connections, which carry errors
// as the bytes encodeError writes.
type errorCodec struct{}

func (errorCodec) EncodeError(err error) []byte { return encodeError(err) }
func (errorCodec) DecodeError(b []byte) error   { return decodeError(b) }
