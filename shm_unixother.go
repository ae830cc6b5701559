//go:build unix && !linux

package mp

import (
	"fmt"
	"os"
)

// createShm makes a file of size bytes in the temporary directory, which
// another process opens by its path; close removes it.
func createShm(size int) (*shmFile, error) {
	f, err := os.CreateTemp("", "mp-shared-*")
	if err != nil {
		return nil, fmt.Errorf("mp: creating shared memory: %w", err)
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("mp: sizing shared memory: %w", err)
	}
	return &shmFile{f: f, path: f.Name(), remove: true}, nil
}
