package mp

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"
)

// Dict is a map shared by goroutines and processes: the analogue of
// Python's multiprocessing.Manager().dict(), typed, with the method set of
// [sync.Map]. Passed inside a task's argument to a [Process] or a process
// pool, it is the same map in the child; the process that created it owns
// the entries, and each of a child's calls is one round trip to it, whose
// keys and values cross encoded (gob by default, as task arguments do).
//
// Methods that take a value return an error as well: once the Dict has
// been handed to a child, a value that cannot be encoded (or, in a child,
// one whose encoding fails) is refused with an error in the caller,
// never dropped. In a child, Load, LoadAndDelete, Delete, Range, Len and
// Clear panic with an "mp: ..." wire.Message if a key cannot be encoded or a
// value the owner sends cannot be decoded: types that gob encodes never
// do. In a child, Range calls f on a copy of the entries taken in one
// request, which must fit in a connection's frame limit.
//
// A Dict is safe for concurrent use by multiple goroutines. The zero value
// is an empty Dict ready to use. A Dict must not be copied after first
// use.
type Dict[K comparable, V any] struct {
	id     atomic.Uint64
	shared atomic.Bool // handed to a child: values are checked at once

	mu sync.Mutex
	m  map[K]V

	r *remoteObj // in a child: the owner's map
}

// NewDict returns an empty Dict. It is the analogue of Python's
// multiprocessing.Manager().dict().
func NewDict[K comparable, V any]() *Dict[K, V] { return &Dict[K, V]{} }

// The operations of a Dict's protocol. Keys and values travel in raw, each
// preceded by its uvarint length.
const (
	sopDLoad             byte = iota + 1 // [k]; reply header [found], raw v
	sopDStore                            // [k][v]
	sopDLoadOrStore                      // [k][v]; reply header [loaded], raw actual
	sopDLoadAndDelete                    // [k]; reply header [loaded], raw v
	sopDDelete                           // [k]
	sopDSwap                             // [k][v]; reply header [loaded], raw previous
	sopDCompareAndSwap                   // [k][old][new]; reply header [swapped]
	sopDCompareAndDelete                 // [k][old]; reply header [deleted]
	sopDRange                            // reply header: uvarint n; raw: n × [k][v]
	sopDLen                              // reply header: uvarint n
	sopDClear
)

// Load returns the value stored under key, and whether there was one.
func (d *Dict[K, V]) Load(key K) (value V, ok bool) {
	if d.r != nil {
		m := d.must(d.request(sopDLoad, key))
		return d.mustValue(m), m.Header[0] == 1
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	value, ok = d.m[key]
	return value, ok
}

// Store sets the value for key.
func (d *Dict[K, V]) Store(key K, value V) error {
	if d.r != nil {
		_, err := d.request(sopDStore, key, value)
		return err
	}
	if err := d.check(key, value); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	d.m[key] = value
	return nil
}

// LoadOrStore returns the value stored under key if there is one, with
// loaded true; otherwise it stores value and returns it, with loaded
// false.
func (d *Dict[K, V]) LoadOrStore(key K, value V) (actual V, loaded bool, err error) {
	if d.r != nil {
		m, err := d.request(sopDLoadOrStore, key, value)
		if err != nil {
			return actual, false, err
		}
		if m.Header[0] != 1 {
			return value, false, nil
		}
		return d.mustValue(m), true, nil
	}
	if err := d.check(key, value); err != nil {
		return actual, false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.m[key]; ok {
		return v, true, nil
	}
	d.init()
	d.m[key] = value
	return value, false, nil
}

// LoadAndDelete deletes the value for key, and returns it and whether
// there was one.
func (d *Dict[K, V]) LoadAndDelete(key K) (value V, loaded bool) {
	if d.r != nil {
		m := d.must(d.request(sopDLoadAndDelete, key))
		return d.mustValue(m), m.Header[0] == 1
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	value, loaded = d.m[key]
	delete(d.m, key)
	return value, loaded
}

// Delete deletes the value for key.
func (d *Dict[K, V]) Delete(key K) {
	if d.r != nil {
		d.must(d.request(sopDDelete, key))
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, key)
}

// Swap stores value under key and returns the previous value, and whether
// there was one.
func (d *Dict[K, V]) Swap(key K, value V) (previous V, loaded bool, err error) {
	if d.r != nil {
		m, err := d.request(sopDSwap, key, value)
		if err != nil {
			return previous, false, err
		}
		return d.mustValue(m), m.Header[0] == 1, nil
	}
	if err := d.check(key, value); err != nil {
		return previous, false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	previous, loaded = d.m[key]
	d.m[key] = value
	return previous, loaded, nil
}

// CompareAndSwap stores new under key if the value there is equal to old,
// and reports whether it did. As with [sync.Map.CompareAndSwap], old must
// be of a comparable type: an incomparable one panics.
func (d *Dict[K, V]) CompareAndSwap(key K, old, new V) (swapped bool, err error) {
	if d.r != nil {
		m, err := d.request(sopDCompareAndSwap, key, old, new)
		if err != nil {
			return false, err
		}
		return m.Header[0] == 1, nil
	}
	if err := d.check(key, new); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.m[key]; ok && any(cur) == any(old) {
		d.m[key] = new
		return true, nil
	}
	return false, nil
}

// CompareAndDelete deletes the value for key if it is equal to old, and
// reports whether it did. old must be of a comparable type, as for
// CompareAndSwap.
func (d *Dict[K, V]) CompareAndDelete(key K, old V) (deleted bool, err error) {
	if d.r != nil {
		m, err := d.request(sopDCompareAndDelete, key, old)
		if err != nil {
			return false, err
		}
		return m.Header[0] == 1, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.m[key]; ok && any(cur) == any(old) {
		delete(d.m, key)
		return true, nil
	}
	return false, nil
}

// Range calls f for each entry until f returns false. It works on a copy
// of the entries, so f may use the Dict; entries stored or deleted while
// Range runs may or may not be seen, as with [sync.Map.Range].
func (d *Dict[K, V]) Range(f func(key K, value V) bool) {
	keys, values := d.snapshot()
	for i := range keys {
		if !f(keys[i], values[i]) {
			return
		}
	}
}

func (d *Dict[K, V]) snapshot() ([]K, []V) {
	if d.r != nil {
		m := d.must(d.request(sopDRange))
		h := hdrReader{b: m.Header}
		n := h.int()
		f := hdrReader{b: m.Raw}
		keys, values := make([]K, 0, n), make([]V, 0, n)
		for range n {
			kb, vb := field(&f), field(&f)
			if f.bad || h.bad {
				panic("mp: malformed Dict entries from the owner")
			}
			k, err := codecFor[K]().decodeOn(d.r.cn, kb)
			if err != nil {
				panic(fmt.Sprintf("mp: decoding a Dict key: %v", err))
			}
			v, err := codecFor[V]().decodeOn(d.r.cn, vb)
			if err != nil {
				panic(fmt.Sprintf("mp: decoding a Dict value: %v", err))
			}
			keys, values = append(keys, k), append(values, v)
		}
		return keys, values
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	keys, values := make([]K, 0, len(d.m)), make([]V, 0, len(d.m))
	for k, v := range d.m {
		keys, values = append(keys, k), append(values, v)
	}
	return keys, values
}

// Len returns the number of entries.
func (d *Dict[K, V]) Len() int {
	if d.r != nil {
		m := d.must(d.request(sopDLen))
		h := hdrReader{b: m.Header}
		return h.int()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}

// Clear deletes every entry.
func (d *Dict[K, V]) Clear() {
	if d.r != nil {
		d.must(d.request(sopDClear))
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.m)
}

func (d *Dict[K, V]) init() {
	if d.m == nil {
		d.m = map[K]V{}
	}
}

// check refuses a key or value that could not cross to a child, once the
// Dict has been handed to one.
func (d *Dict[K, V]) check(key K, value V) error {
	if !d.shared.Load() {
		return nil
	}
	if _, err := codecFor[K]().as("the Dict key").encode(key); err != nil {
		return err
	}
	_, err := codecFor[V]().as("the Dict value").encode(value)
	return err
}

// request sends op with key and values to the owner, from a child.
func (d *Dict[K, V]) request(op byte, kv ...any) (wire.Message, error) {
	var raw []byte
	for i, x := range kv {
		var b []byte
		var err error
		if i == 0 {
			b, err = codecFor[K]().as("the Dict key").encodeOn(d.r.cn, x.(K))
		} else {
			b, err = codecFor[V]().as("the Dict value").encodeOn(d.r.cn, x.(V))
		}
		if err != nil {
			return wire.Message{}, err
		}
		raw = binary.AppendUvarint(raw, uint64(len(b)))
		raw = append(raw, b...)
	}
	m, err := d.r.call(op, raw)
	if err == nil && needsFlag(op) && len(m.Header) != 1 {
		err = errMalformedShared
	}
	return m, err
}

func needsFlag(op byte) bool {
	switch op {
	case sopDLoad, sopDLoadOrStore, sopDLoadAndDelete, sopDSwap, sopDCompareAndSwap, sopDCompareAndDelete:
		return true
	}
	return false
}

// must panics with err, for the methods that return no error.
func (d *Dict[K, V]) must(m wire.Message, err error) wire.Message {
	if err != nil {
		panic(fmt.Sprintf("mp: Dict: %v", err))
	}
	return m
}

// mustValue decodes the value of a reply.
func (d *Dict[K, V]) mustValue(m wire.Message) V {
	var zero V
	if m.Header[0] != 1 && len(m.Raw) == 0 {
		return zero
	}
	v, err := codecFor[V]().as("the Dict value").decodeOn(d.r.cn, m.Raw)
	if err != nil {
		panic(fmt.Sprintf("mp: Dict: %v", err))
	}
	return v
}

// field reads one length-prefixed field.
func field(h *hdrReader) []byte {
	n := h.int()
	if h.bad || n > len(h.b) {
		h.bad = true
		return nil
	}
	b := h.b[:n]
	h.b = h.b[n:]
	return b
}

func (d *Dict[K, V]) serve(r *sreq) {
	err := d.serveOp(r)
	if err != nil {
		r.reply(wire.Message{}, err)
	}
}

// serveOp answers r, or returns the error to answer it with.
func (d *Dict[K, V]) serveOp(r *sreq) (err error) {
	defer func() {
		// An incomparable value in a compare fails the request, not the
		// owner.
		if v := recover(); v != nil {
			err = fmt.Errorf("mp: Dict: %v", v)
		}
	}()
	f := hdrReader{b: r.req.Msg.Raw}
	cn := r.req.Conn
	key := func() (K, error) {
		b := field(&f)
		if f.bad {
			return *new(K), errMalformedShared
		}
		return codecFor[K]().as("the Dict key").decodeOn(cn, b)
	}
	val := func() (V, error) {
		b := field(&f)
		if f.bad {
			return *new(V), errMalformedShared
		}
		return codecFor[V]().as("the Dict value").decodeOn(cn, b)
	}
	flagged := func(ok bool, v V, send bool) error {
		var raw []byte
		if send {
			var err error
			if raw, err = codecFor[V]().as("the Dict value").encodeOn(cn, v); err != nil {
				return err
			}
		}
		r.reply(wire.Message{Header: []byte{byte(boolField(ok))}, Raw: raw}, nil)
		return nil
	}
	var k K
	if r.op >= sopDLoad && r.op <= sopDCompareAndDelete {
		if k, err = key(); err != nil {
			return err
		}
	}
	switch r.op {
	case sopDLoad:
		v, ok := d.Load(k)
		return flagged(ok, v, ok)
	case sopDStore:
		v, err := val()
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.init()
		d.m[k] = v
		d.mu.Unlock()
		r.reply(wire.Message{}, nil)
	case sopDLoadOrStore:
		v, err := val()
		if err != nil {
			return err
		}
		d.mu.Lock()
		actual, loaded := d.m[k]
		if !loaded {
			d.init()
			d.m[k], actual = v, v
		}
		d.mu.Unlock()
		return flagged(loaded, actual, loaded)
	case sopDLoadAndDelete:
		v, ok := d.LoadAndDelete(k)
		return flagged(ok, v, ok)
	case sopDDelete:
		d.Delete(k)
		r.reply(wire.Message{}, nil)
	case sopDSwap:
		v, err := val()
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.init()
		prev, ok := d.m[k]
		d.m[k] = v
		d.mu.Unlock()
		return flagged(ok, prev, ok)
	case sopDCompareAndSwap:
		old, err := val()
		if err != nil {
			return err
		}
		nv, err := val()
		if err != nil {
			return err
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		cur, ok := d.m[k]
		ok = ok && any(cur) == any(old)
		if ok {
			d.m[k] = nv
		}
		return flagged(ok, nv, false)
	case sopDCompareAndDelete:
		old, err := val()
		if err != nil {
			return err
		}
		ok, _ := d.CompareAndDelete(k, old)
		return flagged(ok, old, false)
	case sopDRange:
		keys, values := d.snapshot()
		var raw []byte
		for i := range keys {
			kb, err := codecFor[K]().as("the Dict key").encodeOn(cn, keys[i])
			if err != nil {
				return err
			}
			vb, err := codecFor[V]().as("the Dict value").encodeOn(cn, values[i])
			if err != nil {
				return err
			}
			raw = binary.AppendUvarint(raw, uint64(len(kb)))
			raw = append(raw, kb...)
			raw = binary.AppendUvarint(raw, uint64(len(vb)))
			raw = append(raw, vb...)
		}
		r.reply(wire.Message{Header: binary.AppendUvarint(nil, uint64(len(keys))), Raw: raw}, nil)
	case sopDLen:
		r.reply(wire.Message{Header: binary.AppendUvarint(nil, uint64(d.Len()))}, nil)
	case sopDClear:
		d.Clear()
		r.reply(wire.Message{}, nil)
	default:
		r.bad(fmt.Sprintf("unknown Dict operation %d", r.op))
	}
	return nil
}

// gone has nothing to release: a Dict's entries do not belong to the
// process that stored them.
func (d *Dict[K, V]) gone(*sharedPeer) {}

// dictType names a Dict's type in its handle.
func dictType[K comparable, V any]() string {
	return "Dict[" + reflect.TypeFor[K]().String() + "," + reflect.TypeFor[V]().String() + "]"
}

// GobEncode encodes the map as a handle, so that a *Dict inside a task's
// argument reaches the child as the same map. Programs do not call it
// themselves. From then on the owner checks at once that each value it
// stores can be encoded. It fails in a child for a Dict received from the
// parent.
func (d *Dict[K, V]) GobEncode() ([]byte, error) {
	if d.r != nil {
		return nil, errForwarded("Dict")
	}
	d.shared.Store(true)
	return encodeHandle(shareObj(&d.id, d), dictType[K, V]()), nil
}

// GobDecode makes d, a new Dict, the child's side of a handle written by
// [Dict.GobEncode]. It fails outside a child process that mp started.
func (d *Dict[K, V]) GobDecode(b []byte) error {
	r, err := decodeHandle(b, "Dict", dictType[K, V]())
	if err != nil {
		return err
	}
	d.r = r
	return nil
}
