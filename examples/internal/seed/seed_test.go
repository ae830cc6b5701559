package seed_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain dispatches first: the process-pool twins start this test binary
// again as their workers.
func TestMain(m *testing.M) {
	mp.Main()
	goleak.VerifyTestMain(m)
}

func numbers() []string {
	var s []string
	for i := range 100 {
		s = append(s, fmt.Sprint(i))
	}
	return s
}

func lines(b *bytes.Buffer) []string { return strings.Split(strings.TrimSpace(b.String()), "\n") }

func TestThreads(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.Threads(t.Context(), &b))
	got := lines(&b)
	assert.ElementsMatch(t, []string{"thread1", "thread2"}, got[:2])
	assert.Equal(t, "main", got[2])
}

func TestProcessImages(t *testing.T) {
	var b bytes.Buffer
	n, err := seed.ProcessImages(t.Context(), &b, 200, 50, time.Microsecond, 3)
	require.NoError(t, err)
	assert.Equal(t, 200, n)
	got := lines(&b)
	slices.Sort(got)
	assert.Equal(t, []string{"Processing image: image_0", "Processing image: image_1", "Processing image: image_2"}, got)
}

func TestPoolMap(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.PoolMap(t.Context(), &b))
	got := lines(&b)
	assert.Equal(t, "多进程开始执行", got[0])
	assert.ElementsMatch(t, numbers(), got[1:])
}

func TestApplyAsync(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.ApplyAsync(t.Context(), &b))
	got := lines(&b)
	assert.Equal(t, "多进程结束执行", got[len(got)-1], "join waits for every task")
	assert.ElementsMatch(t, append(numbers(), "多进程开始执行"), got[:len(got)-1])
}

func TestApply(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.Apply(t.Context(), &b))
	assert.Equal(t, append(numbers(), "多进程结束执行"), lines(&b), "apply runs one task at a time, in order")
}
