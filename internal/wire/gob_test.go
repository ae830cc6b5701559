package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzItem is a streamable type with every kind of field gob describes.
type fuzzItem struct {
	N    int
	S    string
	B    []byte
	Tags map[string][]float64
	Next *fuzzItem
}

// FuzzDecodeStreamed feeds an arbitrary type description and value to the
// decoder of streamed gob values, as a peer's kindGobType frame and a
// later value frame would bring them.
func FuzzDecodeStreamed(f *testing.F) {
	gt := StreamType(reflect.TypeFor[fuzzItem]())
	require.NotNil(f, gt, "fuzzItem is streamable")
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	require.NoError(f, enc.Encode(fuzzItem{}))
	buf.Reset()
	require.NoError(f, enc.Encode(fuzzItem{N: 3, S: "s", Tags: map[string][]float64{"a": {1}}}))
	value := append(binary.AppendUvarint(nil, gt.id), buf.Bytes()...)
	f.Add(gt.blob, value)
	f.Add(gt.blob, binary.AppendUvarint(nil, gt.id))
	f.Add([]byte{}, value)
	f.Fuzz(func(t *testing.T, desc, val []byte) {
		c := &Conn{}
		c.gobDefined(gt.id, desc)
		var v fuzzItem
		_ = c.DecodeStreamed(val, reflect.ValueOf(&v))
		// A decoder that failed must not be kept for the next value.
		var w fuzzItem
		_ = c.DecodeStreamed(val, reflect.ValueOf(&w))
	})
}
