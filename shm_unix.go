//go:build unix

package mp

import (
	"os"

	"golang.org/x/sys/unix"
)

// shmFile is the creator's side of shared memory: an open file and the
// path by which other processes open it.
type shmFile struct {
	f      *os.File
	path   string
	remove bool // the file is on disk: remove it on close
}

func (f *shmFile) close() error {
	err := f.f.Close()
	if f.remove {
		_ = os.Remove(f.path)
	}
	return err
}

func mapShm(f *shmFile, size int) ([]byte, error) {
	return unix.Mmap(int(f.f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func unmapShm(b []byte) error { return unix.Munmap(b) }

// openShm maps size bytes of the memory at path.
func openShm(path string, size int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	// The mapping outlives the descriptor.
	defer f.Close()
	return unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}
