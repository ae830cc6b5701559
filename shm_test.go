//go:build unix

package mp_test

import (
	"context"
	"sync"
	"testing"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSharedMemoryInProcess(t *testing.T) {
	_, err := mp.NewSharedMemory(0)
	assert.Error(t, err)
	m, err := mp.NewSharedMemory(4096)
	require.NoError(t, err)
	b := m.Bytes()
	require.Len(t, b, 4096)
	assert.Equal(t, make([]byte, 4096), b, "zeroed")
	b[0] = 7
	assert.Equal(t, byte(7), m.Bytes()[0])
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close twice")
	assert.Nil(t, m.Bytes())
}

type fillArgs struct {
	M    *mp.SharedMemory
	Part int // fills bytes [Part*Size, (Part+1)*Size) with Part+1
	Size int
}

var fillPart = mp.Register(func(_ context.Context, a fillArgs) (int, error) {
	b := a.M.Bytes()
	for i := a.Part * a.Size; i < (a.Part+1)*a.Size; i++ {
		b[i] = byte(a.Part + 1)
	}
	// What the owner wrote before starting the child is here too.
	last := int(b[len(b)-1])
	return last, a.M.Close()
})

// TestSharedMemoryProcesses has 4 children fill a quarter of a buffer
// each, which the owner then reads without any copy coming back.
func TestSharedMemoryProcesses(t *testing.T) {
	ctx := t.Context()
	const size = 1 << 16
	m, err := mp.NewSharedMemory(4*size + 1)
	require.NoError(t, err)
	defer m.Close()
	m.Bytes()[4*size] = 42
	var ps []*mp.Process[int]
	for part := range 4 {
		p := mp.NewProcess(fillPart, fillArgs{M: m, Part: part, Size: size})
		require.NoError(t, p.Start())
		ps = append(ps, p)
	}
	for _, p := range ps {
		require.NoError(t, p.Join(ctx))
		got, _ := p.Result()
		assert.Equal(t, 42, got)
	}
	b := m.Bytes()
	for part := range 4 {
		for i := part * size; i < (part+1)*size; i++ {
			if b[i] != byte(part+1) {
				t.Fatalf("byte %d is %d, want %d", i, b[i], part+1)
			}
		}
	}
}

func testValue[T mp.Number](t *testing.T) {
	v, err := mp.NewValue[T](5)
	require.NoError(t, err)
	defer v.Close()
	assert.Equal(t, T(5), v.Load())
	v.Store(7)
	assert.Equal(t, T(10), v.Add(3))
	assert.True(t, v.CompareAndSwap(10, 2))
	assert.False(t, v.CompareAndSwap(10, 3))
	assert.Equal(t, T(2), v.Load())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				v.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, T(4002), v.Load())
}

type myInt int32

func TestValueInProcess(t *testing.T) {
	t.Run("int", testValue[int])
	t.Run("int32", testValue[int32])
	t.Run("uint32", testValue[uint32])
	t.Run("int64", testValue[int64])
	t.Run("uint64", testValue[uint64])
	t.Run("uintptr", testValue[uintptr])
	t.Run("float32", testValue[float32])
	t.Run("float64", testValue[float64])
	t.Run("named", testValue[myInt])

	v, err := mp.NewValue[int32](0)
	require.NoError(t, err)
	defer v.Close()
	assert.Equal(t, int32(-1), v.Add(-1), "negative deltas wrap as in sync/atomic")
}

type addArgs[T mp.Number] struct {
	V *mp.Value[T]
	N int
}

var addInt = mp.Register(func(_ context.Context, a addArgs[int64]) (struct{}, error) {
	for range a.N {
		a.V.Add(1)
	}
	return struct{}{}, nil
})

var addFloat = mp.Register(func(_ context.Context, a addArgs[float64]) (struct{}, error) {
	for range a.N {
		a.V.Add(1)
	}
	return struct{}{}, nil
})

// TestValueProcesses has 4 processes add 100 000 each to an integer and
// a float Value: atomic adds on the shared memory lose nothing.
func TestValueProcesses(t *testing.T) {
	ctx := t.Context()
	vi, err := mp.NewValue[int64](0)
	require.NoError(t, err)
	defer vi.Close()
	vf, err := mp.NewValue[float64](0)
	require.NoError(t, err)
	defer vf.Close()
	var ps []interface{ Join(context.Context) error }
	for range 4 {
		p := mp.NewProcess(addInt, addArgs[int64]{V: vi, N: 100_000})
		require.NoError(t, p.Start())
		q := mp.NewProcess(addFloat, addArgs[float64]{V: vf, N: 100_000})
		require.NoError(t, q.Start())
		ps = append(ps, p, q)
	}
	for _, p := range ps {
		require.NoError(t, p.Join(ctx))
	}
	assert.Equal(t, int64(400_000), vi.Load())
	assert.Equal(t, 400_000.0, vf.Load())
}

func TestArrayInProcess(t *testing.T) {
	a, err := mp.NewArray[float64](10)
	require.NoError(t, err)
	defer a.Close()
	assert.Equal(t, 10, a.Len())
	s := a.Slice()
	require.Len(t, s, 10)
	s[9] = 1.5
	assert.Equal(t, 1.5, a.Slice()[9])
	e, err := mp.NewArray[int32](0)
	require.NoError(t, err)
	defer e.Close()
	assert.Empty(t, e.Slice())
	assert.PanicsWithValue(t, "mp: negative Array length", func() { _, _ = mp.NewArray[int](-1) })
}

type squareArgs struct {
	A        *mp.Array[int64]
	From, To int
}

// squares writes i*i at each index i of its range.
var squares = mp.Register(func(_ context.Context, a squareArgs) (int, error) {
	s := a.A.Slice()
	for i := a.From; i < a.To; i++ {
		s[i] = int64(i * i)
	}
	return a.A.Len(), nil
})

func TestArrayProcesses(t *testing.T) {
	ctx := t.Context()
	const n = 1000
	a, err := mp.NewArray[int64](n)
	require.NoError(t, err)
	defer a.Close()
	var ps []*mp.Process[int]
	for k := range 4 {
		p := mp.NewProcess(squares, squareArgs{A: a, From: k * n / 4, To: (k + 1) * n / 4})
		require.NoError(t, p.Start())
		ps = append(ps, p)
	}
	for _, p := range ps {
		require.NoError(t, p.Join(ctx))
		l, _ := p.Result()
		assert.Equal(t, n, l)
	}
	for i, v := range a.Slice() {
		require.Equal(t, int64(i*i), v, "index %d", i)
	}
}

// TestValueWrongType checks that a handle is decoded only as its own type.
func TestValueWrongType(t *testing.T) {
	v, err := mp.NewValue[int32](1)
	require.NoError(t, err)
	defer v.Close()
	b, err := v.GobEncode()
	require.NoError(t, err)
	var w mp.Value[int64]
	err = w.GobDecode(b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a handle of a Value[int32] cannot be decoded as a Value[int64]")
}

// fillViaGrandchild passes the memory it received on to a child of its
// own, which fills part 0.
var fillViaGrandchild = mp.Register(func(ctx context.Context, a fillArgs) (int, error) {
	p := mp.NewProcess(fillPart, a)
	if err := p.Start(); err != nil {
		return 0, err
	}
	if err := p.Join(ctx); err != nil {
		return 0, err
	}
	return p.Result()
})

// TestSharedMemoryGrandchild checks that a child may pass shared memory on:
// the handle names the creator's memory.
func TestSharedMemoryGrandchild(t *testing.T) {
	m, err := mp.NewSharedMemory(9)
	require.NoError(t, err)
	defer m.Close()
	m.Bytes()[8] = 42
	p := mp.NewProcess(fillViaGrandchild, fillArgs{M: m, Part: 0, Size: 8})
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
	got, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, 42, got)
	assert.Equal(t, []byte{1, 1, 1, 1, 1, 1, 1, 1, 42}, m.Bytes())
}
