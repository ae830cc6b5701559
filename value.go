package mp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// Number is the set of types that [Value] and [Array] hold: the integer
// and floating-point types that [sync/atomic] serves, floats through
// their bits, and the types defined on them.
type Number interface {
	~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64 | ~uintptr | ~float32 | ~float64
}

// Value is a number in shared memory that every process holding it reads
// and writes atomically: the analogue of Python's multiprocessing.Value,
// without the lock that Python's carries (each operation is atomic; use a
// [Lock] to group several). Passed inside a task's argument to a
// [Process] or a process pool, it is the same number in the child, mapped
// there; an operation is a machine instruction on the shared memory, not a
// wire.Message, and costs about as much as the [sync/atomic] operation it is
// (BenchmarkValueAdd). See [SharedMemory] for the platforms.
//
// A Value is safe for concurrent use by multiple goroutines and
// processes. The zero value is not usable; use [NewValue]. A Value must
// not be copied after first use.
type Value[T Number] struct {
	m    *SharedMemory
	p    unsafe.Pointer
	kind valueKind
}

// valueKind is how a Value's atomic operations treat T.
type valueKind uint8

const (
	kind32 valueKind = iota // 4-byte integer
	kind64                  // 8-byte integer
	kindF32
	kindF64
)

func kindOfNumber[T Number]() valueKind {
	var zero T
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Float32:
		return kindF32
	case reflect.Float64:
		return kindF64
	}
	if unsafe.Sizeof(zero) == 4 {
		return kind32
	}
	return kind64
}

// NewValue returns a Value in new shared memory, holding v. It is the
// analogue of Python's multiprocessing.Value(typecode, v). On Windows it
// returns [errors.ErrUnsupported].
func NewValue[T Number](v T) (*Value[T], error) {
	m, err := NewSharedMemory(8)
	if err != nil {
		return nil, err
	}
	x := &Value[T]{m: m, p: unsafe.Pointer(&m.b[0]), kind: kindOfNumber[T]()}
	x.Store(v)
	return x, nil
}

func bitsOf[T Number, B uint32 | uint64](v T) B   { return *(*B)(unsafe.Pointer(&v)) }
func fromBits[T Number, B uint32 | uint64](b B) T { return *(*T)(unsafe.Pointer(&b)) }

// Load returns the value.
func (v *Value[T]) Load() T {
	switch v.kind {
	case kind32, kindF32:
		return fromBits[T](atomic.LoadUint32((*uint32)(v.p)))
	default:
		return fromBits[T](atomic.LoadUint64((*uint64)(v.p)))
	}
}

// Store sets the value to x.
func (v *Value[T]) Store(x T) {
	switch v.kind {
	case kind32, kindF32:
		atomic.StoreUint32((*uint32)(v.p), bitsOf[T, uint32](x))
	default:
		atomic.StoreUint64((*uint64)(v.p), bitsOf[T, uint64](x))
	}
}

// Add adds delta to the value and returns the new value. Floats are added
// with a compare-and-swap loop.
func (v *Value[T]) Add(delta T) T {
	// The common case stays small enough to be inlined.
	if v.kind == kind64 {
		return fromBits[T](atomic.AddUint64((*uint64)(v.p), bitsOf[T, uint64](delta)))
	}
	return v.addOther(delta)
}

func (v *Value[T]) addOther(delta T) T {
	switch v.kind {
	case kind32:
		return fromBits[T](atomic.AddUint32((*uint32)(v.p), bitsOf[T, uint32](delta)))
	case kindF32:
		p := (*uint32)(v.p)
		for {
			old := atomic.LoadUint32(p)
			n := math.Float32bits(math.Float32frombits(old) + float32(delta))
			if atomic.CompareAndSwapUint32(p, old, n) {
				return fromBits[T](n)
			}
		}
	}
	p := (*uint64)(v.p)
	for {
		old := atomic.LoadUint64(p)
		n := math.Float64bits(math.Float64frombits(old) + float64(delta))
		if atomic.CompareAndSwapUint64(p, old, n) {
			return fromBits[T](n)
		}
	}
}

// CompareAndSwap sets the value to new if it is old, and reports whether
// it did. Floats compare with ==, so a NaN never matches.
func (v *Value[T]) CompareAndSwap(old, new T) bool {
	switch v.kind {
	case kind32:
		return atomic.CompareAndSwapUint32((*uint32)(v.p), bitsOf[T, uint32](old), bitsOf[T, uint32](new))
	case kind64:
		return atomic.CompareAndSwapUint64((*uint64)(v.p), bitsOf[T, uint64](old), bitsOf[T, uint64](new))
	case kindF32:
		p := (*uint32)(v.p)
		for {
			cur := atomic.LoadUint32(p)
			if fromBits[T](cur) != old {
				return false
			}
			if atomic.CompareAndSwapUint32(p, cur, bitsOf[T, uint32](new)) {
				return true
			}
		}
	default:
		p := (*uint64)(v.p)
		for {
			cur := atomic.LoadUint64(p)
			if fromBits[T](cur) != old {
				return false
			}
			if atomic.CompareAndSwapUint64(p, cur, bitsOf[T, uint64](new)) {
				return true
			}
		}
	}
}

// Close unmaps the value's memory in this process (see
// [SharedMemory.Close]); the Value must not be used afterwards.
func (v *Value[T]) Close() error { return v.m.Close() }

// GobEncode encodes the value as a handle of its shared memory, so that a
// *Value inside a task's argument is mapped in the child. Programs do not
// call it themselves.
func (v *Value[T]) GobEncode() ([]byte, error) {
	if v.m == nil {
		return nil, errors.New("mp: a zero Value cannot be sent; use NewValue")
	}
	return encodeShmTyped(v.m, reflect.TypeFor[T]().String())
}

// GobDecode maps the value of a handle written by [Value.GobEncode].
func (v *Value[T]) GobDecode(b []byte) error {
	m, err := decodeShmTyped(b, "Value", reflect.TypeFor[T]().String(), 8)
	if err != nil {
		return err
	}
	v.m, v.p, v.kind = m, unsafe.Pointer(&m.b[0]), kindOfNumber[T]()
	return nil
}

// encodeShmTyped is the handle of a Value's or Array's memory: the
// SharedMemory's handle, then the element type's name.
func encodeShmTyped(m *SharedMemory, typ string) ([]byte, error) {
	h, err := m.handle()
	if err != nil {
		return nil, err
	}
	b := binary.AppendUvarint(nil, uint64(len(h)))
	b = append(b, h...)
	return append(b, typ...), nil
}

// decodeShmTyped maps the memory of a handle written by encodeShmTyped, after
// checking its type and that it has at least size bytes.
func decodeShmTyped(b []byte, what, typ string, size int) (*SharedMemory, error) {
	h := hdrReader{b: b}
	n := h.int()
	if h.bad || n > len(h.b) {
		return nil, fmt.Errorf("mp: bad %s handle", what)
	}
	if got := string(h.b[n:]); got != typ {
		return nil, fmt.Errorf("mp: a handle of a %s[%s] cannot be decoded as a %s[%s]", what, got, what, typ)
	}
	m := &SharedMemory{}
	if err := m.GobDecode(h.b[:n]); err != nil {
		return nil, err
	}
	if m.size < size {
		m.Close()
		return nil, fmt.Errorf("mp: bad %s handle", what)
	}
	return m, nil
}
