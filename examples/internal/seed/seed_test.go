package seed_test

import (
	"bytes"
	"fmt"
	"os"
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

func TestPID(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.PID(t.Context(), &b))
	got := lines(&b)
	require.Len(t, got, 2)
	assert.Regexp(t, `^MainProcess: pid \d+ \(os.Getpid\(\) = \d+\)$`, got[0])
	var name string
	var pid, ppid int
	var isChild bool
	_, err := fmt.Sscanf(got[1], "%s pid %d, parent pid %d, child: %t", &name, &pid, &ppid, &isChild)
	require.NoError(t, err)
	assert.Regexp(t, `^Process-\d+:$`, name)
	assert.NotEqual(t, os.Getpid(), pid, "the child has a pid of its own")
	assert.Equal(t, os.Getpid(), ppid)
	assert.True(t, isChild)
}

func TestProcess(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.Process(t.Context(), &b))
	got := lines(&b)
	require.Len(t, got, 4)
	assert.Equal(t, fmt.Sprintf("Parent process %d.", os.Getpid()), got[0])
	assert.Equal(t, "Child process will start.", got[1])
	assert.Regexp(t, `^Run child process test \(\d+\)\.\.\.$`, got[2])
	assert.NotEqual(t, fmt.Sprintf("Run child process test (%d)...", os.Getpid()), got[2])
	assert.Equal(t, "Child process end.", got[3])
}

func TestProducerConsumer(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.ProducerConsumer(t.Context(), &b))
	got := lines(&b)
	require.Len(t, got, 11)
	assert.Equal(t, "main thread", got[10], "Join returns after every product is consumed")
	var made, consumed []string
	for _, l := range got[:10] {
		if p, ok := strings.CutPrefix(l, "producer made "); ok {
			made = append(made, p)
		} else if p, ok := strings.CutPrefix(l, "consumer got "); ok {
			consumed = append(consumed, p)
		}
	}
	want := []string{"product 0", "product 1", "product 2", "product 3", "product 4"}
	assert.Equal(t, want, made)
	assert.Equal(t, want, consumed)
}

func TestJoinableQueueProcess(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.JoinableQueueProcess(t.Context(), &b, time.Millisecond))
	assert.Equal(t, []string{"生产者做好了 产品0", "生产者做好了 产品1", "生产者做好了 产品2", "生产者做好了 产品3", "生产者做好了 产品4", "主线程"}, lines(&b))
}

func TestSharedQueueProcesses(t *testing.T) {
	code, err := seed.SharedQueueProcesses(t.Context(), time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, -15, code)
}

func TestShared(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.Shared(t.Context(), &b))
	got := lines(&b)
	require.Len(t, got, 6)
	assert.Equal(t, "counter = 4000 (4 processes × 1000 adds under the Lock)", got[4])
	assert.Equal(t, "buffer = aaaa…dddd (4096 bytes, a quarter per process)", got[5])
}
