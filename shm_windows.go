package mp

import "errors"

// shmFile is not available on Windows.
type shmFile struct{ path string }

func (*shmFile) close() error { return nil }

func createShm(int) (*shmFile, error) { return nil, errors.ErrUnsupported }

func mapShm(*shmFile, int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapShm([]byte) error { return nil }

func openShm(string, int) ([]byte, error) { return nil, errors.ErrUnsupported }
