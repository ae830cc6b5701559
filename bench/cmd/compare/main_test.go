package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the runner's tests leak no goroutine. The runner
// never imports package mp, so there is no mp.Main to call first.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
