package mp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// SharedMemory is a block of memory mapped into every process that holds
// it: the analogue of Python's multiprocessing.shared_memory.SharedMemory.
// Passed inside a task's argument to a [Process] or a process pool, it is
// the same memory in the child, mapped there when the argument is decoded;
// nothing is copied when either side reads or writes it. Guard what the
// processes write with a [Lock], or use [Value] for a single number.
//
// On Linux the memory is an anonymous memfd of the creating process,
// which a child opens through /proc/<pid>/fd (so the creator must still
// hold it open: see [SharedMemory.Close]). On other Unix systems it is a
// file in [os.TempDir], removed when the creator closes the SharedMemory;
// a creator that dies without closing it leaves the file behind. On
// Windows, NewSharedMemory returns [errors.ErrUnsupported].
//
// A SharedMemory is safe for concurrent use by multiple goroutines; the
// bytes are not synchronized. The zero value is not usable; use
// [NewSharedMemory]. A SharedMemory must not be copied after first use.
type SharedMemory struct {
	mu   sync.Mutex
	b    []byte
	f    *shmFile // in the creator
	p    string   // elsewhere: where the creator's memory is opened
	size int
}

// NewSharedMemory returns size bytes of zeroed shared memory. It is the
// analogue of Python's SharedMemory(create=True, size=size). It returns an
// error if size is not positive or the memory cannot be made.
func NewSharedMemory(size int) (*SharedMemory, error) {
	if size <= 0 {
		return nil, fmt.Errorf("mp: SharedMemory size %d is not positive", size)
	}
	f, err := createShm(size)
	if err != nil {
		return nil, err
	}
	b, err := mapShm(f, size)
	if err != nil {
		f.close()
		return nil, err
	}
	return &SharedMemory{b: b, f: f, size: size}, nil
}

// Bytes returns the memory: the same memory in every process that holds
// it. The slice must not be used after Close.
func (m *SharedMemory) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b
}

// Close unmaps the memory in this process; the other processes keep
// theirs. In the creator it also stops sharing: a child that decodes the
// SharedMemory afterwards fails to map it. Close is the analogue of
// Python's SharedMemory.close, and in the creator of unlink too. Calling
// it again does nothing.
func (m *SharedMemory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b == nil {
		return nil
	}
	err := unmapShm(m.b)
	m.b = nil
	if m.f != nil {
		err = errors.Join(err, m.f.close())
		m.f = nil
	}
	return err
}

// handle returns the handle of the memory: where a process opens it, and
// its size.
func (m *SharedMemory) handle() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b == nil {
		return nil, errors.New("mp: SharedMemory is closed")
	}
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(m.size))
	return append(b, m.path()...), nil
}

// GobEncode encodes the memory as a handle, so that a *SharedMemory inside
// a task's argument is mapped in the child. Programs do not call it
// themselves. A child may pass on what it received: the handle names the
// creator's memory.
func (m *SharedMemory) GobEncode() ([]byte, error) { return m.handle() }

// GobDecode maps the memory of a handle written by
// [SharedMemory.GobEncode] into this process, as m.
func (m *SharedMemory) GobDecode(b []byte) error {
	h := hdrReader{b: b}
	v := h.byte()
	size := h.int()
	if v != 1 || h.bad || size <= 0 || len(h.b) == 0 {
		return errors.New("mp: bad SharedMemory handle")
	}
	path := string(h.b)
	mem, err := openShm(path, size)
	if err != nil {
		return fmt.Errorf("mp: mapping SharedMemory: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b != nil {
		_ = unmapShm(mem)
		return errors.New("mp: GobDecode into a SharedMemory already in use")
	}
	m.b, m.size, m.p = mem, size, path
	return nil
}

// path is where a process opens the memory.
func (m *SharedMemory) path() string {
	if m.f != nil {
		return m.f.path
	}
	return m.p
}
