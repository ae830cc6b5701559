package mp

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// createShm makes an anonymous memfd of size bytes. Another process opens
// it through /proc/<pid>/fd/<fd> while this one holds it open.
func createShm(size int) (*shmFile, error) {
	fd, err := unix.MemfdCreate("mp-shared", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("mp: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mp: sizing shared memory: %w", err)
	}
	return &shmFile{f: os.NewFile(uintptr(fd), "mp-shared"), path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)}, nil
}
