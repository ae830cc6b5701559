package mp

import (
	"errors"
	"reflect"
	"unsafe"
)

// Array is a fixed-length array of numbers in shared memory: the analogue
// of Python's multiprocessing.Array, without its lock. Passed inside a
// task's argument to a [Process] or a process pool, it is the same array
// in the child, mapped there; the slice it returns is the shared memory
// itself, not a copy. See [SharedMemory] for the platforms.
//
// Access to the elements is not synchronized: guard it with a [Lock], give
// each process its own part, or use a [Value] per number. An Array must
// not be copied after first use; its zero value is not usable, use
// [NewArray].
type Array[T Number] struct {
	m *SharedMemory
	n int
}

// NewArray returns an Array of n zero elements in new shared memory. It is
// the analogue of Python's multiprocessing.Array(typecode, n). On Windows
// it returns [errors.ErrUnsupported]. It panics if n is negative.
func NewArray[T Number](n int) (*Array[T], error) {
	if n < 0 {
		panic("mp: negative Array length")
	}
	var zero T
	m, err := NewSharedMemory(max(n*int(unsafe.Sizeof(zero)), 1))
	if err != nil {
		return nil, err
	}
	return &Array[T]{m: m, n: n}, nil
}

// Len returns the number of elements.
func (a *Array[T]) Len() int { return a.n }

// Slice returns the elements: the shared memory itself, the same in every
// process that holds the Array. It must not be used after Close.
func (a *Array[T]) Slice() []T {
	b := a.m.Bytes()
	if a.n == 0 || b == nil {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), a.n)
}

// Close unmaps the array's memory in this process (see
// [SharedMemory.Close]); the slices Slice returned must not be used
// afterwards.
func (a *Array[T]) Close() error { return a.m.Close() }

// GobEncode encodes the array as a handle of its shared memory, so that an
// *Array inside a task's argument is mapped in the child. Programs do not
// call it themselves.
func (a *Array[T]) GobEncode() ([]byte, error) {
	if a.m == nil {
		return nil, errors.New("mp: a zero Array cannot be sent; use NewArray")
	}
	return encodeShmTyped(a.m, reflect.TypeFor[T]().String())
}

// GobDecode maps the array of a handle written by [Array.GobEncode].
func (a *Array[T]) GobDecode(b []byte) error {
	var zero T
	m, err := decodeShmTyped(b, "Array", reflect.TypeFor[T]().String(), 1)
	if err != nil {
		return err
	}
	a.m, a.n = m, m.size/int(unsafe.Sizeof(zero))
	return nil
}
