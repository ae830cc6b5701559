//go:build !unix

package main

import "os/exec"

// killGroup leaves cmd as it is: without process groups, cancelling its
// context kills the command alone.
func killGroup(*exec.Cmd) {}
