package mp_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queue is the method set that Queue and JoinableQueue share, so that one
// table of tests covers both.
type queue[T any] interface {
	Put(ctx context.Context, v T) error
	TryPut(v T) error
	Get(ctx context.Context) (T, error)
	TryGet() (T, error)
	Len() int
	Close()
	CloseNow()
}

var (
	_ queue[int] = (*mp.Queue[int])(nil)
	_ queue[int] = (*mp.JoinableQueue[int])(nil)
)

// queueKinds builds each kind of queue, from its constructor and as a zero
// value when it is unbounded.
func queueKinds(maxsize int) map[string]func() queue[int] {
	kinds := map[string]func() queue[int]{
		"Queue":         func() queue[int] { return mp.NewQueue[int](maxsize) },
		"JoinableQueue": func() queue[int] { return mp.NewJoinableQueue[int](maxsize) },
	}
	if maxsize <= 0 {
		kinds["Queue/zero"] = func() queue[int] { return new(mp.Queue[int]) }
		kinds["JoinableQueue/zero"] = func() queue[int] { return new(mp.JoinableQueue[int]) }
	}
	return kinds
}

func TestQueueFIFO(t *testing.T) {
	for _, maxsize := range []int{0, -1, 1000} {
		for name, newQueue := range queueKinds(maxsize) {
			t.Run(name, func(t *testing.T) {
				q := newQueue()
				// Enough items to grow and wrap the ring several times.
				for round := range 3 {
					for i := range 1000 {
						require.NoError(t, q.Put(t.Context(), round*1000+i))
					}
					assert.Equal(t, 1000, q.Len())
					for i := range 500 {
						v, err := q.Get(t.Context())
						require.NoError(t, err)
						require.Equal(t, round*1000+i, v)
					}
					for i := range 500 {
						require.NoError(t, q.TryPut(-i))
					}
					for i := 500; i < 1000; i++ {
						v, err := q.TryGet()
						require.NoError(t, err)
						require.Equal(t, round*1000+i, v)
					}
					for i := range 500 {
						v, err := q.Get(t.Context())
						require.NoError(t, err)
						require.Equal(t, -i, v)
					}
					assert.Zero(t, q.Len())
				}
			})
		}
	}
}

func TestQueueTryFullEmpty(t *testing.T) {
	for name, newQueue := range queueKinds(2) {
		t.Run(name, func(t *testing.T) {
			q := newQueue()
			_, err := q.TryGet()
			require.ErrorIs(t, err, mp.ErrEmpty)
			require.NoError(t, q.TryPut(1))
			require.NoError(t, q.TryPut(2))
			require.ErrorIs(t, q.TryPut(3), mp.ErrFull)
			assert.Equal(t, 2, q.Len())
			v, err := q.TryGet()
			require.NoError(t, err)
			assert.Equal(t, 1, v)
			require.NoError(t, q.TryPut(3))
			require.ErrorIs(t, q.TryPut(4), mp.ErrFull)
		})
	}
}

func TestQueueUnboundedNeverFull(t *testing.T) {
	for name, newQueue := range queueKinds(0) {
		t.Run(name, func(t *testing.T) {
			q := newQueue()
			for i := range 100_000 {
				require.NoError(t, q.TryPut(i))
			}
			assert.Equal(t, 100_000, q.Len())
			// Drain past the point where the ring shrinks, checking order.
			for i := range 100_000 {
				v, err := q.TryGet()
				require.NoError(t, err)
				require.Equal(t, i, v)
			}
			_, err := q.TryGet()
			require.ErrorIs(t, err, mp.ErrEmpty)
		})
	}
}

func TestQueueBlockedPutResumesOnGet(t *testing.T) {
	for name, newQueue := range queueKinds(1) {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue()
				require.NoError(t, q.Put(t.Context(), 1))
				var put atomic.Bool
				go func() {
					assert.NoError(t, q.Put(t.Context(), 2))
					put.Store(true)
				}()
				synctest.Wait()
				require.False(t, put.Load(), "Put returned while the queue was full")
				assert.Equal(t, 1, q.Len())

				v, err := q.Get(t.Context())
				require.NoError(t, err)
				assert.Equal(t, 1, v)
				synctest.Wait()
				require.True(t, put.Load(), "Put still blocked after Get made room")
				v, err = q.TryGet()
				require.NoError(t, err)
				assert.Equal(t, 2, v)
			})
		})
	}
}

func TestQueueBlockedGetResumesOnPut(t *testing.T) {
	for name, newQueue := range queueKinds(0) {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue()
				got := make(chan int, 2)
				for range 2 {
					go func() {
						v, err := q.Get(t.Context())
						assert.NoError(t, err)
						got <- v
					}()
				}
				synctest.Wait()
				require.Empty(t, got, "Get returned from an empty queue")

				require.NoError(t, q.Put(t.Context(), 7))
				synctest.Wait()
				require.Len(t, got, 1, "exactly one blocked Get takes the item")
				assert.Equal(t, 7, <-got)
				require.NoError(t, q.TryPut(8))
				assert.Equal(t, 8, <-got)
				assert.Zero(t, q.Len())
			})
		})
	}
}

func TestQueueContextTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	for name, newQueue := range queueKinds(2) {
		t.Run(name+"/Get", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue()
				ctx, cancel := context.WithTimeout(t.Context(), timeout)
				defer cancel()
				start := time.Now()
				_, err := q.Get(ctx)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.Equal(t, ctx.Err(), err)
				assert.Equal(t, timeout, time.Since(start))

				// The cancelled Get left nothing behind that could swallow
				// the next item.
				require.NoError(t, q.Put(t.Context(), 5))
				assert.Equal(t, 1, q.Len())
				v, err := q.TryGet()
				require.NoError(t, err)
				assert.Equal(t, 5, v)
			})
		})
		t.Run(name+"/Put", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue()
				require.NoError(t, q.Put(t.Context(), 1))
				require.NoError(t, q.Put(t.Context(), 2))
				ctx, cancel := context.WithTimeout(t.Context(), timeout)
				defer cancel()
				start := time.Now()
				err := q.Put(ctx, 3)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				assert.Equal(t, timeout, time.Since(start))

				// The item of the cancelled Put never enters the queue,
				// even once there is room.
				assert.Equal(t, 2, q.Len())
				for _, want := range []int{1, 2} {
					v, err := q.TryGet()
					require.NoError(t, err)
					assert.Equal(t, want, v)
				}
				_, err = q.TryGet()
				require.ErrorIs(t, err, mp.ErrEmpty)
			})
		})
		t.Run(name+"/AlreadyDone", func(t *testing.T) {
			q := newQueue()
			require.NoError(t, q.Put(t.Context(), 1))
			// Cancellation returns the context's cause, as everywhere in mp.
			ctx, cancel := context.WithCancelCause(t.Context())
			gone := errors.New("gone")
			cancel(gone)
			require.ErrorIs(t, q.Put(ctx, 2), gone)
			_, err := q.Get(ctx)
			require.ErrorIs(t, err, gone)
			assert.Equal(t, 1, q.Len())
		})
	}
}

func TestJoinableQueueTaskDoneTooOften(t *testing.T) {
	const msg = "mp: JoinableQueue.TaskDone called more times than items were put"
	var zero mp.JoinableQueue[int]
	require.PanicsWithValue(t, msg, zero.TaskDone)

	q := mp.NewJoinableQueue[int](0)
	require.NoError(t, q.Put(t.Context(), 1))
	require.NoError(t, q.Put(t.Context(), 2))
	for range 2 {
		_, err := q.Get(t.Context())
		require.NoError(t, err)
		require.NotPanics(t, q.TaskDone)
	}
	require.PanicsWithValue(t, msg, q.TaskDone)
	// The failed call changed nothing: the next batch counts as usual.
	require.NoError(t, q.Put(t.Context(), 3))
	require.NotPanics(t, q.TaskDone)
	require.NoError(t, q.Join(t.Context()))
}

func TestJoinableQueueJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		q := mp.NewJoinableQueue[int](8)
		var sum atomic.Int64
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for v, err := range q.All(ctx) {
					if !assert.NoError(t, err) {
						return
					}
					sum.Add(int64(v))
					q.TaskDone()
				}
			})
		}
		batch := func(from, to int) {
			for i := from; i < to; i++ {
				require.NoError(t, q.Put(ctx, i))
			}
		}
		batch(0, 100)
		require.NoError(t, q.Join(ctx))
		require.Equal(t, int64(4950), sum.Load())

		batch(100, 200)
		require.NoError(t, q.Join(ctx))
		require.Equal(t, int64(19900), sum.Load())

		q.Close()
		wg.Wait()
		require.NoError(t, q.Join(ctx))
	})
}

// TestJoinableQueueJoinRacesTaskDone starts a Join as the last task is
// being marked done, many times: a lost wake-up would leave Join waiting
// with nothing unfinished until its deadline.
func TestJoinableQueueJoinRacesTaskDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		q := mp.NewJoinableQueue[int](0)
		for i := range 5000 {
			require.NoError(t, q.Put(ctx, i))
			joined := make(chan error, 1)
			go func() { joined <- q.Join(ctx) }()
			got, err := q.Get(ctx)
			require.NoError(t, err)
			require.Equal(t, i, got)
			q.TaskDone()
			require.NoError(t, <-joined, "round %d", i)
		}
	})
}

func TestJoinableQueueJoinWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := mp.NewJoinableQueue[int](0)
		require.NoError(t, q.Join(t.Context()), "Join on a queue with nothing put")
		require.NoError(t, q.Put(t.Context(), 1))
		require.NoError(t, q.Put(t.Context(), 2))

		var joined atomic.Int32
		for range 2 {
			go func() {
				assert.NoError(t, q.Join(t.Context()))
				joined.Add(1)
			}()
		}
		for range 2 {
			_, err := q.Get(t.Context())
			require.NoError(t, err)
		}
		q.TaskDone()
		synctest.Wait()
		require.Zero(t, joined.Load(), "Join returned with a task unfinished")
		q.TaskDone()
		synctest.Wait()
		require.Equal(t, int32(2), joined.Load())

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, q.Put(t.Context(), 3))
		start := time.Now()
		require.ErrorIs(t, q.Join(ctx), context.DeadlineExceeded)
		assert.Equal(t, time.Minute, time.Since(start))
	})
}

func TestQueueClose(t *testing.T) {
	for name, newQueue := range queueKinds(4) {
		t.Run(name+"/Empty", func(t *testing.T) {
			q := newQueue()
			q.Close()
			q.Close() // a no-op
			_, err := q.Get(t.Context())
			require.ErrorIs(t, err, mp.ErrClosed)
			_, err = q.TryGet()
			require.ErrorIs(t, err, mp.ErrClosed)
			require.ErrorIs(t, q.Put(t.Context(), 1), mp.ErrClosed)
			require.ErrorIs(t, q.TryPut(1), mp.ErrClosed)
			assert.Zero(t, q.Len())
		})
		t.Run(name+"/NonEmpty", func(t *testing.T) {
			q := newQueue()
			for i := range 4 {
				require.NoError(t, q.Put(t.Context(), i))
			}
			q.Close()
			require.ErrorIs(t, q.TryPut(9), mp.ErrClosed)
			assert.Equal(t, 4, q.Len())
			for i := range 4 {
				v, err := q.Get(t.Context())
				require.NoError(t, err)
				require.Equal(t, i, v)
			}
			_, err := q.Get(t.Context())
			require.ErrorIs(t, err, mp.ErrClosed)
			_, err = q.TryGet()
			require.ErrorIs(t, err, mp.ErrClosed)
		})
		t.Run(name+"/Now", func(t *testing.T) {
			q := newQueue()
			for i := range 4 {
				require.NoError(t, q.Put(t.Context(), i))
			}
			q.CloseNow()
			assert.Zero(t, q.Len())
			_, err := q.Get(t.Context())
			require.ErrorIs(t, err, mp.ErrClosed)
			require.ErrorIs(t, q.Put(t.Context(), 1), mp.ErrClosed)
			q.CloseNow()
			q.Close()
			assert.Zero(t, q.Len())
		})
	}
}

func TestJoinableQueueCloseAndJoin(t *testing.T) {
	t.Run("Close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := mp.NewJoinableQueue[int](0)
			require.NoError(t, q.Put(t.Context(), 1))
			q.Close()
			var joined atomic.Bool
			go func() {
				assert.NoError(t, q.Join(t.Context()))
				joined.Store(true)
			}()
			synctest.Wait()
			require.False(t, joined.Load(), "Close counted an item left in the queue as done")
			_, err := q.Get(t.Context())
			require.NoError(t, err)
			q.TaskDone()
			synctest.Wait()
			require.True(t, joined.Load())
		})
	})
	t.Run("CloseNow", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := mp.NewJoinableQueue[int](0)
			for i := range 3 {
				require.NoError(t, q.Put(t.Context(), i))
			}
			_, err := q.Get(t.Context()) // held, not yet done
			require.NoError(t, err)
			var joined atomic.Bool
			go func() {
				assert.NoError(t, q.Join(t.Context()))
				joined.Store(true)
			}()
			synctest.Wait()
			require.False(t, joined.Load())
			q.CloseNow()
			synctest.Wait()
			require.False(t, joined.Load(), "CloseNow counted the item a consumer holds as done")
			q.TaskDone()
			synctest.Wait()
			require.True(t, joined.Load())
			require.Panics(t, q.TaskDone, "discarded items were counted as done twice")
		})
	})
}

func TestQueueCloseWakesBlocked(t *testing.T) {
	for name, newQueue := range queueKinds(1) {
		for _, now := range []bool{false, true} {
			closeName := map[bool]string{false: "Close", true: "CloseNow"}[now]
			t.Run(name+"/"+closeName+"/Getters", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					q := newQueue()
					errs := make(chan error, 3)
					for range 3 {
						go func() {
							_, err := q.Get(t.Context())
							errs <- err
						}()
					}
					synctest.Wait()
					require.Empty(t, errs)
					if now {
						q.CloseNow()
					} else {
						q.Close()
					}
					synctest.Wait()
					require.Len(t, errs, 3)
					for range 3 {
						require.ErrorIs(t, <-errs, mp.ErrClosed)
					}
				})
			})
			t.Run(name+"/"+closeName+"/Putters", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					q := newQueue()
					require.NoError(t, q.Put(t.Context(), 1))
					errs := make(chan error, 3)
					for i := range 3 {
						go func() { errs <- q.Put(t.Context(), 10+i) }()
					}
					synctest.Wait()
					require.Empty(t, errs)
					if now {
						q.CloseNow()
					} else {
						q.Close()
					}
					synctest.Wait()
					require.Len(t, errs, 3)
					for range 3 {
						require.ErrorIs(t, <-errs, mp.ErrClosed)
					}
					v, err := q.TryGet()
					if now {
						require.ErrorIs(t, err, mp.ErrClosed)
						return
					}
					// Only the item put before Close is left.
					require.NoError(t, err)
					assert.Equal(t, 1, v)
					_, err = q.TryGet()
					require.ErrorIs(t, err, mp.ErrClosed)
				})
			})
		}
	}
}

func TestQueueAll(t *testing.T) {
	t.Run("ClosedAndDrained", func(t *testing.T) {
		q := mp.NewQueue[int](0)
		for i := range 5 {
			require.NoError(t, q.Put(t.Context(), i))
		}
		q.Close()
		var got []int
		for v, err := range q.All(t.Context()) {
			require.NoError(t, err, "the end of a closed queue is no error")
			got = append(got, v)
		}
		assert.Equal(t, []int{0, 1, 2, 3, 4}, got)
	})
	t.Run("Break", func(t *testing.T) {
		q := mp.NewQueue[int](0)
		for i := range 5 {
			require.NoError(t, q.Put(t.Context(), i))
		}
		for v, err := range q.All(t.Context()) {
			require.NoError(t, err)
			if v == 1 {
				break
			}
		}
		assert.Equal(t, 3, q.Len(), "All took more items than the loop consumed")
	})
	t.Run("ContextDone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := mp.NewJoinableQueue[int](0)
			require.NoError(t, q.Put(t.Context(), 1))
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			var got []int
			var errs []error
			for v, err := range q.All(ctx) {
				if err != nil {
					// Not a break: All itself ends after an error.
					errs = append(errs, err)
					continue
				}
				got = append(got, v)
				q.TaskDone()
			}
			assert.Equal(t, []int{1}, got)
			require.Len(t, errs, 1, "the end of ctx is yielded once, last")
			require.ErrorIs(t, errs[0], context.DeadlineExceeded)
			require.Equal(t, ctx.Err(), errs[0])
			require.NoError(t, q.Join(t.Context()))
		})
	})
}

// TestJoinableQueueStress runs 4 producers, 6 consumers and 2 joiners over
// 64Ki items, and closes the queue half-way through.
func TestJoinableQueueStress(t *testing.T) {
	const (
		producers = 4
		consumers = 6
		joiners   = 2
		items     = 64 << 10
		perProd   = items / producers
	)
	for _, now := range []bool{false, true} {
		t.Run(map[bool]string{false: "Close", true: "CloseNow"}[now], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				q := mp.NewJoinableQueue[int](64)
				seen := make([]atomic.Int32, items)
				var put, got atomic.Int64
				halfway := make(chan struct{})

				var prodWG, consWG, joinWG sync.WaitGroup
				putOK := make([][]bool, producers)
				for p := range producers {
					putOK[p] = make([]bool, perProd)
					prodWG.Go(func() {
						for i := range perProd {
							err := q.Put(ctx, p*perProd+i)
							if err != nil {
								assert.ErrorIs(t, err, mp.ErrClosed)
								return
							}
							putOK[p][i] = true
							put.Add(1)
						}
					})
				}
				consumerErrs := make([]error, consumers)
				for c := range consumers {
					consWG.Go(func() {
						for {
							v, err := q.Get(ctx)
							if err != nil {
								consumerErrs[c] = err
								return
							}
							seen[v].Add(1)
							if got.Add(1) == items/2 {
								close(halfway)
							}
							q.TaskDone()
						}
					})
				}
				producing := make(chan struct{})
				for range joiners {
					joinWG.Go(func() {
						for {
							assert.NoError(t, q.Join(ctx))
							select {
							case <-producing:
							default:
								runtime.Gosched() // Join returns at once while the queue is idle
								continue
							}
							// The producers are done: this Join waited for
							// every item that went in.
							assert.NoError(t, q.Join(ctx))
							return
						}
					})
				}

				<-halfway
				if now {
					q.CloseNow()
				} else {
					q.Close()
				}
				prodWG.Wait()
				close(producing)
				consWG.Wait()
				joinWG.Wait()
				require.NoError(t, q.Join(ctx))

				for c, err := range consumerErrs {
					require.ErrorIs(t, err, mp.ErrClosed, "consumer %d", c)
				}
				require.GreaterOrEqual(t, got.Load(), int64(items/2))
				for p := range producers {
					for i, ok := range putOK[p] {
						n := seen[p*perProd+i].Load()
						switch {
						case n > 1:
							require.Failf(t, "duplicate", "item %d got %d times", p*perProd+i, n)
						case !ok && n != 0:
							require.Failf(t, "phantom", "item %d got but never put", p*perProd+i)
						case ok && n == 0 && !now:
							require.Failf(t, "lost", "item %d put but never got", p*perProd+i)
						}
					}
				}
				if !now {
					require.Equal(t, put.Load(), got.Load())
				}
				assert.Zero(t, q.Len())
				require.Panics(t, q.TaskDone)
			})
		})
	}
}

func TestLIFOQueue(t *testing.T) {
	for _, maxsize := range []int{0, 3000} {
		t.Run(fmt.Sprint(maxsize), func(t *testing.T) {
			q := mp.NewLIFOQueue[int](maxsize)
			// Past the ring's growth and, unbounded, its shrinking.
			for i := range 3000 {
				require.NoError(t, q.Put(t.Context(), i))
			}
			for i := 2999; i >= 1000; i-- {
				v, err := q.Get(t.Context())
				require.NoError(t, err)
				require.Equal(t, i, v)
			}
			require.NoError(t, q.TryPut(-1))
			v, err := q.TryGet()
			require.NoError(t, err)
			assert.Equal(t, -1, v)
			for i := 999; i >= 0; i-- {
				v, err := q.TryGet()
				require.NoError(t, err)
				require.Equal(t, i, v)
			}
			_, err = q.TryGet()
			require.ErrorIs(t, err, mp.ErrEmpty)
		})
	}
}

func TestPriorityQueue(t *testing.T) {
	require.PanicsWithValue(t, "mp: NewPriorityQueue with a nil less function", func() {
		mp.NewPriorityQueue[int](0, nil)
	})

	// Interleaved puts and gets against a sorted reference.
	rng := rand.New(rand.NewPCG(1, 2))
	q := mp.NewPriorityQueue(0, func(a, b int) bool { return a < b })
	var ref []int
	for range 20_000 {
		if len(ref) == 0 || rng.IntN(3) > 0 {
			v := rng.IntN(1000)
			require.NoError(t, q.TryPut(v))
			i, _ := slices.BinarySearch(ref, v)
			ref = slices.Insert(ref, i, v)
			continue
		}
		v, err := q.TryGet()
		require.NoError(t, err)
		require.Equal(t, ref[0], v)
		ref = ref[1:]
	}
	require.Equal(t, len(ref), q.Len())
	q.Close()
	var rest []int
	for v, err := range q.All(t.Context()) {
		require.NoError(t, err)
		rest = append(rest, v)
	}
	require.Equal(t, ref, rest)
}

func TestPriorityQueueBlockedPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type job struct {
			prio int
			name string
		}
		q := mp.NewPriorityQueue(2, func(a, b job) bool { return a.prio < b.prio })
		require.NoError(t, q.Put(t.Context(), job{5, "five"}))
		require.NoError(t, q.Put(t.Context(), job{3, "three"}))
		go func() { assert.NoError(t, q.Put(t.Context(), job{1, "one"})) }()
		synctest.Wait()
		assert.Equal(t, 2, q.Len())

		// The blocked item enters only once Get made room.
		var got []string
		for range 3 {
			j, err := q.Get(t.Context())
			require.NoError(t, err)
			got = append(got, j.name)
		}
		assert.Equal(t, []string{"three", "one", "five"}, got)
	})
}

// TestQueueCancelRace cancels Puts and Gets while items move: an item whose
// Put failed never comes out, and every item whose Put succeeded comes out
// exactly once, even when a Get's ctx ends just as the item is handed over.
func TestQueueCancelRace(t *testing.T) {
	const (
		workers = 4
		perProd = 4000
	)
	q := mp.NewQueue[int](4)
	var putOK [workers * perProd]atomic.Bool
	var seen [workers * perProd]atomic.Int32
	var prodWG, consWG sync.WaitGroup
	for p := range workers {
		prodWG.Go(func() {
			for i := range perProd {
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%7)*time.Microsecond)
				if q.Put(ctx, p*perProd+i) == nil {
					putOK[p*perProd+i].Store(true)
				}
				cancel()
			}
		})
	}
	stop := make(chan struct{})
	for range workers {
		consWG.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%5)*time.Microsecond)
				v, err := q.Get(ctx)
				cancel()
				if err == nil {
					seen[v].Add(1)
				} else {
					assert.ErrorIs(t, err, context.DeadlineExceeded)
				}
			}
		})
	}
	prodWG.Wait()
	close(stop)
	consWG.Wait()
	q.Close()
	for v, err := range q.All(t.Context()) {
		require.NoError(t, err)
		seen[v].Add(1)
	}
	var put int
	for i := range putOK {
		n := seen[i].Load()
		if putOK[i].Load() {
			put++
			require.Equal(t, int32(1), n, "item %d, put once", i)
		} else {
			require.Zero(t, n, "item %d, whose Put failed", i)
		}
	}
	require.Positive(t, put)
}
