//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// killGroup makes cmd lead its own process group and makes cancelling its
// context kill the whole group, so that an interrupted run leaves no test
// binary or Python worker behind.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
