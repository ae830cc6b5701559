package mp

import (
	"errors"
	"fmt"
)

// spawn reports that child processes are not supported on Windows yet.
func spawn(spawnOptions) (*child, error) {
	return nil, fmt.Errorf("mp: child processes on Windows: %w", errors.ErrUnsupported)
}

// signal is never reached on Windows, where spawn always fails.
func (ch *child) signal(signalKind) error { return errors.ErrUnsupported }

// runChildIfAsked does nothing on Windows: no process is ever a child.
func runChildIfAsked() {}

// parentDeathSignal is false: no child ever runs on Windows.
const parentDeathSignal = false
