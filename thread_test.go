package mp_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestThreadLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		th := mp.NewThread(func(_ context.Context, name string) (string, error) {
			<-release
			return "hello " + name, nil
		}, "thread1")

		assert.False(t, th.Alive())
		require.Error(t, th.Join(t.Context()), "Join before Start")
		_, err := th.Result()
		require.Error(t, err, "Result before Start")

		require.NoError(t, th.Start())
		require.Error(t, th.Start(), "Start twice")
		assert.True(t, th.Alive())
		_, err = th.Result()
		require.Error(t, err, "Result while running")

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		require.ErrorIs(t, th.Join(ctx), context.DeadlineExceeded, "ctx bounds the wait")
		assert.True(t, th.Alive(), "the task keeps running after Join gives up")

		close(release)
		require.NoError(t, th.Join(t.Context()))
		<-th.Done()
		assert.False(t, th.Alive())
		v, err := th.Result()
		require.NoError(t, err)
		assert.Equal(t, "hello thread1", v)
	})
}

func TestThreadErrorAndPanic(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		f     mp.Func[int, int]
		check func(t *testing.T, err error)
	}{
		{"error", func(context.Context, int) (int, error) { return 0, boom }, func(t *testing.T, err error) {
			require.ErrorIs(t, err, boom)
		}},
		{"panic", func(context.Context, int) (int, error) { panic("oops") }, func(t *testing.T, err error) {
			var pe *mp.PanicError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "oops", pe.Value)
			assert.NotEmpty(t, pe.Stack)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := mp.NewThread(tt.f, 1)
			require.NoError(t, th.Start())
			tt.check(t, th.Join(t.Context()))
			_, err := th.Result()
			tt.check(t, err)
		})
	}
}
