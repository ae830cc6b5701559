package mp_test

import (
	"testing"

	"github.com/mpgo/mp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	mp.Main()
	serveFloor()
	goleak.VerifyTestMain(m)
}
