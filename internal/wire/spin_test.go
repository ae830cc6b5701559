package wire

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSpinStopsWhenReady(t *testing.T) {
	calls := 0
	assert.True(t, Spin(time.Now(), func() bool { calls++; return calls == 200 }))
	assert.Equal(t, 200, calls, "Spin polls until ready reports true, and no longer")
}

func TestSpinGivesUp(t *testing.T) {
	start := time.Now()
	assert.False(t, Spin(start, func() bool { return false }))
	assert.GreaterOrEqual(t, time.Since(start), SpinLimit, "Spin polls for SpinLimit before it gives up")
}

func TestSpinWorth(t *testing.T) {
	assert.Equal(t, canSpin, SpinWorth(0), "a short last wait is worth polling for where polling can pay")
	assert.False(t, SpinWorth(time.Millisecond), "a long last wait is not")
	assert.False(t, SpinWorth(SpinLimit))
}
