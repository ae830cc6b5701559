//go:build unix

package mp_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockInProcess(t *testing.T) {
	ctx := t.Context()
	var l mp.Lock // the zero value is unlocked
	counter := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				assert.NoError(t, l.Lock(ctx))
				counter++
				l.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 8000, counter)

	require.True(t, l.TryLock())
	assert.False(t, l.TryLock(), "TryLock of a held lock")
	l.Unlock()
	assert.PanicsWithValue(t, "mp: Unlock of unlocked Lock", l.Unlock)
}

// TestLockCancel checks that a Lock whose ctx ends leaves no waiter: the
// next Unlock frees the lock instead of handing it to the gone caller.
func TestLockCancel(t *testing.T) {
	l := mp.NewLock()
	require.NoError(t, l.Lock(t.Context()))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error)
	go func() { errc <- l.Lock(ctx) }()
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	l.Unlock()
	assert.True(t, l.TryLock(), "the cancelled caller took the lock")
	l.Unlock()

	done, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, l.Lock(t.Context()))
	assert.ErrorIs(t, l.Lock(done), context.Canceled, "Lock of a held lock with a done ctx")
	l.Unlock()
	assert.True(t, l.TryLock())
}

// counterFile is a counter in a file: reading and writing it is not
// atomic, so only mutual exclusion keeps increments from being lost.
type counterFile string

func (f counterFile) add(delta int) error {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return err
	}
	return os.WriteFile(string(f), []byte(strconv.Itoa(n+delta)), 0o644)
}

func newCounterFile(t *testing.T) counterFile {
	f := counterFile(filepath.Join(t.TempDir(), "counter"))
	require.NoError(t, os.WriteFile(string(f), []byte("0"), 0o644))
	return f
}

func (f counterFile) value(t *testing.T) int {
	b, err := os.ReadFile(string(f))
	require.NoError(t, err)
	n, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	return n
}

type lockedAdds struct {
	L    *mp.Lock
	File string
	N    int
}

// addLocked adds 1 to the counter file N times under the lock.
var addLocked = mp.Register(func(ctx context.Context, a lockedAdds) (struct{}, error) {
	for range a.N {
		if err := a.L.Lock(ctx); err != nil {
			return struct{}{}, err
		}
		err := counterFile(a.File).add(1)
		a.L.Unlock()
		if err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
})

func TestLockProcesses(t *testing.T) {
	ctx := t.Context()
	l := mp.NewLock()
	f := newCounterFile(t)
	var ps []*mp.Process[struct{}]
	for range 4 {
		p := mp.NewProcess(addLocked, lockedAdds{L: l, File: string(f), N: 100})
		require.NoError(t, p.Start())
		ps = append(ps, p)
	}
	// The owner takes part too.
	for range 100 {
		require.NoError(t, l.Lock(ctx))
		require.NoError(t, f.add(1))
		l.Unlock()
	}
	for _, p := range ps {
		require.NoError(t, p.Join(ctx))
	}
	assert.Equal(t, 500, f.value(t))
	assert.True(t, l.TryLock(), "a child left the lock held")
}

type lockAndStay struct {
	L      *mp.Lock
	Locked *mp.Queue[int]
	// Exit makes the task return holding the lock, which ends the
	// process; otherwise it waits to be killed.
	Exit bool
}

var lockAndWait = mp.Register(func(ctx context.Context, a lockAndStay) (struct{}, error) {
	if err := a.L.Lock(ctx); err != nil {
		return struct{}{}, err
	}
	if err := a.Locked.Put(ctx, os.Getpid()); err != nil {
		return struct{}{}, err
	}
	if !a.Exit {
		<-ctx.Done()
	}
	return struct{}{}, nil
})

// TestLockHolderDies checks that a lock whose holder dies is released, and
// that the next acquirer is told with ErrLost while holding it.
func TestLockHolderDies(t *testing.T) {
	for _, exit := range []bool{false, true} {
		t.Run(map[bool]string{false: "killed", true: "exited"}[exit], func(t *testing.T) {
			ctx := t.Context()
			l := mp.NewLock()
			locked := mp.NewQueue[int](0)
			p := mp.NewProcess(lockAndWait, lockAndStay{L: l, Locked: locked, Exit: exit})
			require.NoError(t, p.Start())
			pid, err := locked.Get(ctx)
			require.NoError(t, err)
			assert.False(t, l.TryLock(), "the child holds the lock")
			// A waiter in the owner, queued while the child holds it.
			errc := make(chan error, 1)
			go func() { errc <- l.Lock(ctx) }()
			if !exit {
				require.NoError(t, p.Kill())
			}
			_ = p.Join(ctx)
			err = <-errc
			require.ErrorIs(t, err, mp.ErrLost)
			assert.Contains(t, err.Error(), "process "+strconv.Itoa(pid)+" died holding the Lock")
			assert.False(t, l.TryLock(), "the lock is held by the one told")
			l.Unlock()
			require.NoError(t, l.Lock(ctx), "the report is given once")
			l.Unlock()
		})
	}
}

type lockTimeout struct {
	L       *mp.Lock
	Timeout time.Duration
}

// lockBriefly tries to lock with a deadline and returns the error's text;
// it unlocks what it got.
var lockBriefly = mp.Register(func(ctx context.Context, a lockTimeout) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	err := a.L.Lock(ctx)
	if err == nil {
		a.L.Unlock()
		return "locked", nil
	}
	return err.Error(), nil
})

// TestLockCancelInChild checks that a child's Lock whose ctx ends leaves
// no waiter in the owner, in a worker that lives on.
func TestLockCancelInChild(t *testing.T) {
	ctx := t.Context()
	pool := mp.NewProcessPool(1)
	defer func() { pool.Close(); assert.NoError(t, pool.Join(ctx)) }()
	l := mp.NewLock()
	require.NoError(t, l.Lock(ctx))
	got, err := mp.Apply(ctx, pool, lockBriefly, lockTimeout{L: l, Timeout: 20 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, context.DeadlineExceeded.Error(), got)
	l.Unlock()
	assert.True(t, l.TryLock(), "the worker's cancelled Lock took the lock")
	l.Unlock()
	// The worker's next Lock works.
	got, err = mp.Apply(ctx, pool, lockBriefly, lockTimeout{L: l, Timeout: time.Minute})
	require.NoError(t, err)
	assert.Equal(t, "locked", got)
}

// TestLockBadRequest checks that a child's Unlock of a lock it does not
// hold fails that request, and that a malformed request fails the child,
// while the owner keeps the lock.
func TestLockBadRequest(t *testing.T) {
	ctx := t.Context()
	l := mp.NewLock()
	require.NoError(t, l.Lock(ctx))
	p := mp.NewProcess(mp.SharedRequest, mp.SharedRequestArgs{L: l})
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(ctx))
	msg, err := p.Result()
	require.NoError(t, err)
	assert.Regexp(t, `^mp: Unlock by process \d+ of a Lock that process \d+ holds$`, msg)
	assert.False(t, l.TryLock(), "the owner still holds the lock")

	p = mp.NewProcess(mp.SharedRequest, mp.SharedRequestArgs{L: l, Malformed: true})
	require.NoError(t, p.Start())
	err = p.Join(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broke the protocol and was killed")
	assert.False(t, l.TryLock(), "the owner still holds the lock")
	l.Unlock()
	assert.False(t, errors.Is(l.Lock(ctx), mp.ErrLost))
	l.Unlock()
}

type misuse struct {
	L *mp.Lock
	S *mp.Semaphore
	// What: "unlock", "release", "forward"
	What string
}

// misuseInChild does in a child what a program must not: the first two
// panic there, the third fails.
var misuseInChild = mp.Register(func(ctx context.Context, a misuse) (string, error) {
	switch a.What {
	case "unlock":
		a.L.Unlock()
	case "release":
		if err := a.S.Acquire(ctx, 1); err != nil {
			return "", err
		}
		a.S.Release(2)
	case "forward":
		p := mp.NewProcess(holdNothing, a)
		return fmt.Sprint(p.Start()), nil
	}
	return "no panic", nil
})

var holdNothing = mp.Register(func(context.Context, misuse) (struct{}, error) { return struct{}{}, nil })

// TestSharedMisuseInChild checks that Unlock of a lock the child does not
// hold and Release of more units than it holds panic in the child, as
// they do in the owner, and that the owner's state is unaffected; and
// that a lock received from the parent cannot be passed on.
func TestSharedMisuseInChild(t *testing.T) {
	ctx := t.Context()
	a := misuse{L: mp.NewLock(), S: mp.NewSemaphore(2)}
	require.NoError(t, a.L.Lock(ctx))
	for what, want := range map[string]string{
		"unlock":  "mp: Unlock of unlocked Lock",
		"release": "mp: Semaphore released more than held",
	} {
		a.What = what
		p := mp.NewProcess(misuseInChild, a)
		require.NoError(t, p.Start())
		err := p.Join(ctx)
		var pe *mp.PanicError
		require.ErrorAs(t, err, &pe, what)
		assert.Equal(t, want, pe.Value)
	}
	assert.False(t, a.L.TryLock(), "the owner still holds the lock")
	a.L.Unlock()
	require.True(t, a.S.TryAcquire(2), "the dead child's unit came back")
	a.S.Release(2)

	a.What = "forward"
	p := mp.NewProcess(misuseInChild, a)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(ctx))
	got, _ := p.Result()
	assert.Contains(t, got, "received from a parent process cannot be passed on to another process")

	// A handle means nothing outside a child.
	b, err := a.L.GobEncode()
	require.NoError(t, err)
	var l mp.Lock
	assert.ErrorContains(t, l.GobDecode(b), "can be decoded only in a child process that mp started")
}

// TestLockLostInChild checks that the ErrLost report reaches a child that
// acquires the lock after another child died holding it.
func TestLockLostInChild(t *testing.T) {
	ctx := t.Context()
	l := mp.NewLock()
	locked := mp.NewQueue[int](0)
	p := mp.NewProcess(lockAndWait, lockAndStay{L: l, Locked: locked})
	require.NoError(t, p.Start())
	pid, err := locked.Get(ctx)
	require.NoError(t, err)
	q := mp.NewProcess(lockReport, l)
	require.NoError(t, q.Start())
	require.NoError(t, p.Kill())
	require.NoError(t, q.Join(ctx))
	got, err := q.Result()
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("true mp: process %d died holding the Lock; what it guards may be inconsistent", pid), got)
	assert.True(t, l.TryLock(), "the child unlocked")
}

// lockReport locks, says whether the error is ErrLost and what it says,
// and unlocks.
var lockReport = mp.Register(func(ctx context.Context, l *mp.Lock) (string, error) {
	err := l.Lock(ctx)
	if err == nil {
		l.Unlock()
		return "no report", nil
	}
	l.Unlock()
	return fmt.Sprint(errors.Is(err, mp.ErrLost), " ", err), nil
})

type lockRace struct {
	L *mp.Lock
	S *mp.Semaphore
	N int
}

// lockRaces locks L and acquires S with deadlines so short that many end
// while the grant is in flight, and unlocks what it got. It returns how
// many it got.
var lockRaces = mp.Register(func(ctx context.Context, a lockRace) (int, error) {
	got := 0
	for i := range a.N {
		c, cancel := context.WithTimeout(ctx, time.Duration(i%50)*time.Microsecond)
		if a.L.Lock(c) == nil {
			got++
			a.L.Unlock()
		}
		if a.S.Acquire(c, 1) == nil {
			got++
			a.S.Release(1)
		}
		cancel()
	}
	return got, nil
})

// TestLockCancelRace has children cancel Locks and Acquires while the
// owner and each other hand the lock and units around: whatever the
// timing, nothing stays held or waiting.
func TestLockCancelRace(t *testing.T) {
	ctx := t.Context()
	pool := mp.NewProcessPool(2)
	defer func() { pool.Close(); assert.NoError(t, pool.Join(ctx)) }()
	a := lockRace{L: mp.NewLock(), S: mp.NewSemaphore(1), N: 300}
	rs := []*mp.AsyncResult[int]{mp.ApplyAsync(ctx, pool, lockRaces, a), mp.ApplyAsync(ctx, pool, lockRaces, a)}
	got, err := lockRaces(ctx, a)
	require.NoError(t, err)
	for _, r := range rs {
		n, err := r.Get(ctx)
		require.NoError(t, err)
		got += n
	}
	assert.Positive(t, got)
	assert.True(t, a.L.TryLock(), "the lock stayed held")
	assert.True(t, a.S.TryAcquire(1), "the unit stayed held")
	// The workers live on: their Lock works, so no grant went astray.
	n, err := mp.Apply(ctx, pool, lockBriefly, lockTimeout{L: a.L, Timeout: 10 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, context.DeadlineExceeded.Error(), n)
	a.L.Unlock()
	n, err = mp.Apply(ctx, pool, lockBriefly, lockTimeout{L: a.L, Timeout: time.Minute})
	require.NoError(t, err)
	assert.Equal(t, "locked", n)
}
