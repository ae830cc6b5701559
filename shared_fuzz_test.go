//go:build unix

package mp

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzObjects are the shared objects FuzzSharedRequests sends requests to,
// registered once; their handle numbers are in fuzzIDs.
var (
	fuzzOnce    sync.Once
	fuzzLock    = NewLock()
	fuzzSem     = NewSemaphore(3)
	fuzzEvent   = NewEvent()
	fuzzCond    = NewCond(fuzzLock)
	fuzzBarrier = NewBarrier(2)
	fuzzDict    = NewDict[string, int]()
	fuzzIDs     []uint64
)

func fuzzSetup() {
	fuzzOnce.Do(func() {
		for _, enc := range []func() ([]byte, error){
			fuzzLock.GobEncode, fuzzSem.GobEncode, fuzzEvent.GobEncode,
			fuzzCond.GobEncode, fuzzBarrier.GobEncode, fuzzDict.GobEncode,
		} {
			if _, err := enc(); err != nil {
				panic(err)
			}
		}
		fuzzIDs = []uint64{fuzzLock.id.Load(), fuzzSem.id.Load(), fuzzEvent.id.Load(),
			fuzzCond.id.Load(), fuzzBarrier.id.Load(), fuzzDict.id.Load()}
	})
}

// sharedFrame is a request frame to the shared-object service.
func sharedFrame(id uint64, kind wire.Kind, header, raw []byte) []byte {
	return wire.AppendFrame(nil, &wire.Frame{Kind: kind, ID: id, Header: wire.AppendService(serviceShared, header), Raw: raw})
}

// FuzzSharedRequests feeds arbitrary frames to the owner's side of the
// shared objects, as a broken child could send them: each request is
// answered or its child dropped, the owner never panics or hangs, and once
// the child's connection ends everything it held is released.
func FuzzSharedRequests(f *testing.F) {
	fuzzSetup()
	lock, sem, ev, cond, bar, dict := fuzzIDs[0], fuzzIDs[1], fuzzIDs[2], fuzzIDs[3], fuzzIDs[4], fuzzIDs[5]
	kv := func(fields ...string) []byte {
		var b []byte
		for _, s := range fields {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		return b
	}
	key, _ := codecFor[string]().encode("k")
	val, _ := codecFor[int]().encode(7)
	seeds := [][]byte{
		sharedFrame(1, wire.KindRequest, sheader(sopLock, lock, 1), nil),
		sharedFrame(2, wire.KindRequest, sheader(sopCondWait, cond, 2), nil),
		sharedFrame(0, wire.KindNotify, sheader(sopSignal, cond, 0), nil),
		sharedFrame(3, wire.KindRequest, sheader(sopAcquire, sem, 3, 2), nil),
		sharedFrame(0, wire.KindNotify, sheader(sopRelease, sem, 0, 5), nil),
		sharedFrame(0, wire.KindNotify, sheader(sopCancel, 0, 3), nil),
		sharedFrame(4, wire.KindRequest, sheader(sopWait, ev, 4), nil),
		sharedFrame(5, wire.KindRequest, sheader(sopBarrierWait, bar, 5), nil),
		sharedFrame(6, wire.KindRequest, sheader(sopDStore, dict, 0), kv(string(key), string(val))),
		sharedFrame(7, wire.KindRequest, sheader(sopDRange, dict, 0), nil),
		sharedFrame(8, wire.KindRequest, sheader(sopDCompareAndSwap, dict, 0), kv(string(key), string(val))),
		sharedFrame(9, wire.KindRequest, []byte{sopUnlock}, nil),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add(bytes.Join(seeds, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := wire.NewConn(&byteStream{r: bytes.NewReader(data)}, 1<<16, errorCodec{})
		// reaped: drop's kill must reach no process.
		ch := &child{pid: 1 << 30, conn: c, reaped: true, done: make(chan struct{})}
		p := &sharedPeer{ch: ch, objs: map[uint64]sharedObj{}, waits: map[uint64]context.CancelFunc{}}
		c.Handle(serviceShared, p.serve)
		released := make(chan struct{})
		context.AfterFunc(c.Ctx, func() { p.release(); close(released) })
		c.Serve()
		select {
		case <-c.Broken:
		case <-time.After(10 * time.Second):
			t.Fatal("the reader did not end at the end of its input")
		}
		c.Close()
		<-released
		// What the child held came back.
		require.True(t, fuzzLock.TryLock(), "the lock stayed held")
		fuzzLock.Unlock()
		require.True(t, fuzzSem.TryAcquire(3), "semaphore units stayed held")
		fuzzSem.Release(3)
		assert.Equal(t, 0, len(fuzzCond.waiters))
		fuzzBarrier.Reset()
		fuzzEvent.Clear()
		fuzzDict.Clear()
	})
}
