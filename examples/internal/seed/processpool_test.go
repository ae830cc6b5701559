package seed_test

import (
	"bytes"
	"testing"

	"github.com/mpgo/mp/examples/internal/seed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProcessPoolMap(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.ProcessPoolMap(t.Context(), &b))
	assert.Equal(t, append([]string{"多进程开始执行"}, numbers()...), lines(&b), "map keeps the order")
}

func TestProcessPoolApplyAsync(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.ProcessPoolApplyAsync(t.Context(), &b))
	got := lines(&b)
	assert.Equal(t, "多进程结束执行", got[len(got)-1], "join waits for every task and callback")
	assert.ElementsMatch(t, append(numbers(), "多进程开始执行"), got[:len(got)-1])
}

func TestProcessPoolApply(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, seed.ProcessPoolApply(t.Context(), &b))
	assert.Equal(t, append(numbers(), "多进程结束执行"), lines(&b), "apply runs one task at a time, in order")
}
