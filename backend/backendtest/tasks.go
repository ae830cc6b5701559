package backendtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mpgo/mp"
)

// The suite's tasks are registered at package level, so that a back-end
// whose tasks leave the process (mp's worker processes, workers on other
// machines running the same binary) finds them again by name.

// square returns x*x: the cheapest task, for order and look-ahead checks.
var square = mp.Register(func(_ context.Context, x int) (int, error) {
	return x * x, nil
})

// blockCap bounds how long a blocking task waits for its context, so that
// a back-end that never cancels fails the suite instead of keeping a
// worker for ever.
const blockCap = time.Minute

// job says what one call of work does. Its fields are exported for the
// encoders of back-ends whose tasks leave the process.
type job struct {
	// I names the call; work returns it in its span.
	I int
	// Dir, when set, is a directory in which work leaves a file named
	// start-I when it starts and end-I just before it returns, so that the
	// suite can tell which tasks ran, and which returned, even when they
	// run in other processes.
	Dir string
	// Nap is how long work sleeps, returning early with an error wrapping
	// the cause when its context is done first.
	Nap time.Duration
	// Block makes work wait until its context is done (at most blockCap)
	// and return an error wrapping the cause.
	Block bool
	// Fail makes work return errFor(I) after its nap.
	Fail bool
	// Panic makes work panic with panicText(I) after its nap.
	Panic bool
}

// span is what work returns: which call it was and when it ran, in wall
// clock nanoseconds, which the processes of one machine share.
type span struct {
	I          int
	Start, End int64
}

// failText is the message of the error work returns for a job with Fail.
func failText(i int) string { return fmt.Sprintf("backendtest: item %d failed", i) }

// panicText is the value work panics with for a job with Panic.
func panicText(i int) string { return fmt.Sprintf("backendtest: item %d panicked", i) }

// work runs one job: the suite's task for everything but plain values.
var work = mp.Register(func(ctx context.Context, j job) (s span, err error) {
	s = span{I: j.I, Start: time.Now().UnixNano()}
	if j.Dir != "" {
		if err := mark(j.Dir, "start", j.I); err != nil {
			return s, err
		}
		// Deferred so that the file exists before the result leaves,
		// whether the task returns or panics.
		defer func() {
			if e := mark(j.Dir, "end", j.I); e != nil && err == nil {
				err = e
			}
		}()
	}
	if j.Nap > 0 {
		t := time.NewTimer(j.Nap)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return s, fmt.Errorf("backendtest: item %d cancelled: %w", j.I, context.Cause(ctx))
		}
	}
	if j.Block {
		t := time.NewTimer(blockCap)
		defer t.Stop()
		select {
		case <-t.C:
			return s, fmt.Errorf("backendtest: item %d was not cancelled within %v", j.I, blockCap)
		case <-ctx.Done():
			return s, fmt.Errorf("backendtest: item %d cancelled: %w", j.I, context.Cause(ctx))
		}
	}
	if j.Panic {
		panic(panicText(j.I))
	}
	s.End = time.Now().UnixNano()
	if j.Fail {
		return s, fmt.Errorf("%s", failText(j.I))
	}
	return s, nil
})

// mark leaves the file kind-i in dir.
func mark(dir, kind string, i int) error {
	return os.WriteFile(filepath.Join(dir, kind+"-"+strconv.Itoa(i)), nil, 0o600)
}

// marked returns the indexes i for which dir holds a file kind-i.
func marked(dir, kind string) (map[int]bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	set := map[int]bool{}
	for _, e := range ents {
		var i int
		if _, err := fmt.Sscanf(e.Name(), kind+"-%d", &i); err == nil {
			set[i] = true
		}
	}
	return set, nil
}
