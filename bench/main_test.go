package bench

import (
	"testing"

	"github.com/mpgo/mp"
	"go.uber.org/goleak"
)

// TestMain lets the test binary serve as mp's child processes, then checks
// that no benchmark or test leaks a goroutine. The two ants goroutines it
// ignores belong to the default pool that package ants starts in its own
// init, which no benchmark here uses or can stop.
func TestMain(m *testing.M) {
	mp.Main()
	serveEcho()
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}
