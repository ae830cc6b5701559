package wire_test

import (
	"os"
	"testing"

	"github.com/mpgo/mp/internal/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPull reads this process's own memory, which process_vm_readv
// allows: the bytes arrive whole, sizes that no frame may have and
// addresses that are not mapped fail with an error, and CanPull says yes
// only to the probe it was asked to find.
func TestPull(t *testing.T) {
	src := make([]byte, 3<<20+5)
	for i := range src {
		src[i] = byte(i * 7)
	}
	got, err := wire.Pull(os.Getpid(), wire.PullAddr(src), len(src))
	require.NoError(t, err)
	assert.Equal(t, src, got)

	_, err = wire.Pull(os.Getpid(), wire.PullAddr(src), 0)
	require.ErrorIs(t, err, wire.ErrMalformed)
	_, err = wire.Pull(os.Getpid(), wire.PullAddr(src), wire.DefaultMaxFrame+1)
	require.ErrorIs(t, err, wire.ErrMalformed)
	_, err = wire.Pull(os.Getpid(), 4096, 1<<16)
	require.Error(t, err, "page 1 is never mapped")

	probe := [16]byte{'p', 'r', 'o', 'b', 'e'}
	assert.True(t, wire.CanPull(os.Getpid(), wire.PullAddr(probe[:]), &probe))
	other := probe
	other[15] = 1
	assert.False(t, wire.CanPull(os.Getpid(), wire.PullAddr(probe[:]), &other), "another probe")
	assert.False(t, wire.CanPull(os.Getpid(), 0, &probe), "no address offered")
	assert.False(t, wire.CanPull(os.Getpid(), 4096, &probe), "an address not mapped")
}
