//go:build unix

package mp_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dictOps runs every method of d and returns what it saw; the same
// sequence runs in the owner and in a child.
func dictOps(d *mp.Dict[string, int]) (string, error) {
	var out []string
	say := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	d.Clear()
	if err := d.Store("a", 1); err != nil {
		return "", err
	}
	v, ok := d.Load("a")
	say("Load a %d %v", v, ok)
	v, ok = d.Load("zz")
	say("Load zz %d %v", v, ok)
	v, loaded, err := d.LoadOrStore("a", 5)
	say("LoadOrStore a %d %v %v", v, loaded, err)
	v, loaded, err = d.LoadOrStore("b", 2)
	say("LoadOrStore b %d %v %v", v, loaded, err)
	v, loaded, err = d.Swap("b", 3)
	say("Swap b %d %v %v", v, loaded, err)
	v, loaded, err = d.Swap("c", 4)
	say("Swap c %d %v %v", v, loaded, err)
	sw, err := d.CompareAndSwap("c", 9, 5)
	say("CompareAndSwap c 9 %v %v", sw, err)
	sw, err = d.CompareAndSwap("c", 4, 5)
	say("CompareAndSwap c 4 %v %v", sw, err)
	del, err := d.CompareAndDelete("c", 4)
	say("CompareAndDelete c 4 %v %v", del, err)
	say("Len %d", d.Len())
	all := map[string]int{}
	d.Range(func(k string, v int) bool { all[k] = v; return true })
	say("Range %v", all)
	n := 0
	d.Range(func(string, int) bool { n++; return false })
	say("Range stops %d", n)
	v, ok = d.LoadAndDelete("a")
	say("LoadAndDelete a %d %v", v, ok)
	v, ok = d.LoadAndDelete("a")
	say("LoadAndDelete a %d %v", v, ok)
	d.Delete("b")
	say("Len %d", d.Len())
	return fmt.Sprint(out), nil
}

var dictOpsTask = mp.Register(func(_ context.Context, d *mp.Dict[string, int]) (string, error) {
	return dictOps(d)
})

// TestDictOps runs the same operations in the owner and in a child.
func TestDictOps(t *testing.T) {
	var d mp.Dict[string, int] // the zero value is ready
	want, err := dictOps(&d)
	require.NoError(t, err)
	assert.Contains(t, want, "Range map[a:1 b:3 c:5]")
	assert.Contains(t, want, "Range stops 1")

	p := mp.NewProcess(dictOpsTask, &d)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
	got, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, want, got)
	v, ok := d.Load("c")
	assert.True(t, ok)
	assert.Equal(t, 5, v, "the child's Store is seen by the owner")
}

type dictCount struct {
	D *mp.Dict[string, int]
	L *mp.Lock
	N int
}

// countInDict adds 1 to D["n"] N times, reading and writing under L:
// without the lock, increments would be lost.
var countInDict = mp.Register(func(ctx context.Context, a dictCount) (struct{}, error) {
	for range a.N {
		if err := a.L.Lock(ctx); err != nil {
			return struct{}{}, err
		}
		v, _ := a.D.Load("n")
		err := a.D.Store("n", v+1)
		a.L.Unlock()
		if err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
})

// TestDictLockedCounter has 4 children and the owner count in a Dict
// under a Lock: the total is exact.
func TestDictLockedCounter(t *testing.T) {
	ctx := t.Context()
	a := dictCount{D: mp.NewDict[string, int](), L: mp.NewLock(), N: 200}
	var ps []*mp.Process[struct{}]
	for range 4 {
		p := mp.NewProcess(countInDict, a)
		require.NoError(t, p.Start())
		ps = append(ps, p)
	}
	_, err := countInDict(ctx, a)
	require.NoError(t, err)
	for _, p := range ps {
		require.NoError(t, p.Join(ctx))
	}
	v, _ := a.D.Load("n")
	assert.Equal(t, 1000, v)
}

var storeUnencodable = mp.Register(func(_ context.Context, d *mp.Dict[string, any]) (string, error) {
	if err := d.Store("ok", 1); err != nil {
		return "", err
	}
	err := d.Store("f", make(chan int))
	if err == nil {
		return "stored", nil
	}
	_, _, err2 := d.Swap("f", func() {})
	return err.Error() + " | " + fmt.Sprint(err2 != nil), nil
})

// TestDictUnencodable checks that a value that cannot cross is refused in
// the caller, in the owner once the Dict is shared and in a child.
func TestDictUnencodable(t *testing.T) {
	d := mp.NewDict[string, any]()
	require.NoError(t, d.Store("local", make(chan int)), "not shared yet: nothing is encoded")
	d.Delete("local")
	p := mp.NewProcess(storeUnencodable, d)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(t.Context()))
	got, err := p.Result()
	require.NoError(t, err)
	assert.Contains(t, got, "chan")
	assert.Contains(t, got, "| true")
	assert.Equal(t, []string{"ok"}, keys(d))

	err = d.Store("g", make(chan int))
	require.Error(t, err, "shared: the owner checks at once")
	_, _, err = d.LoadOrStore("g", func() {})
	require.Error(t, err)
	assert.Equal(t, []string{"ok"}, keys(d))
}

func keys[V any](d *mp.Dict[string, V]) []string {
	m := map[string]bool{}
	d.Range(func(k string, _ V) bool { m[k] = true; return true })
	return sortedKeys(m)
}

func sortedKeys(m map[string]bool) []string {
	s := make([]string, 0, len(m))
	for k := range maps.Keys(m) {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

func TestDictConcurrent(t *testing.T) {
	d := mp.NewDict[int, int]()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				assert.NoError(t, d.Store(g*100+i, i))
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 400, d.Len())
}
