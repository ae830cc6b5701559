package mp

import "syscall"

// signalName returns the conventional name of signal n, such as "killed".
func signalName(n int) string {
	return syscall.Signal(n).String()
}
