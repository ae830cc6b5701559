package mp

import (
	"bytes"
	"reflect"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// splitT has every kind of field splitFields must tell apart.
type splitT struct {
	N      int
	Data   []byte
	Name   string
	More   []byte
	Named  namedBytes // a plain named byte slice: split too
	Marsh  marshBytes // has its own marshalling: left to gob
	hidden []byte     // unexported: gob ignores it
	Embed             // embedded: left to gob
}

type namedBytes []byte

type marshBytes []byte

func (m marshBytes) MarshalBinary() ([]byte, error) { return append([]byte("m:"), m...), nil }
func (m *marshBytes) UnmarshalBinary(b []byte) error {
	*m = bytes.Clone(bytes.TrimPrefix(b, []byte("m:")))
	return nil
}

// Embed is embedded in splitT.
type Embed struct{ E []byte }

func filled(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i/1000)
	}
	return b
}

func TestSplitFields(t *testing.T) {
	assert.Equal(t, []int{1, 3, 4}, splitFields(reflect.TypeFor[splitT]()))
	assert.Nil(t, splitFields(reflect.TypeFor[[]byte]()))
	assert.Nil(t, splitFields(reflect.TypeFor[*splitT]()))
	assert.Nil(t, splitFields(reflect.TypeFor[struct{ N int }]()))
}

// TestCodecSplitRoundTrip sends struct values whose byte fields hold
// around splitMin bytes: below it they travel inside the gob, from it
// beside it, sent from the value's own memory and received in place.
func TestCodecSplitRoundTrip(t *testing.T) {
	c := codecFor[splitT]()
	tests := []struct {
		name  string
		v     splitT
		split bool
	}{
		{"small", splitT{N: 1, Data: filled(10, 1), Name: "x"}, false},
		{"just below", splitT{N: 2, Data: filled(splitMin-2, 2), More: []byte{1}}, false},
		{"at the threshold", splitT{N: 3, Data: filled(splitMin-1, 3), More: []byte{9}}, true},
		{"large, others empty", splitT{N: 4, Data: filled(1<<20, 4), More: []byte{}}, true},
		{"every kind", splitT{N: 5, Data: filled(40<<10, 5), Name: "n", More: filled(3, 6), Named: filled(70<<10, 7),
			Marsh: filled(5, 8), hidden: []byte{1}, Embed: Embed{E: filled(4, 9)}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, more, err := c.encodeParts(nil, tt.v)
			require.NoError(t, err)
			require.NotEmpty(t, b)
			assert.Equal(t, tt.split, b[0] == gobSplit)
			if tt.split {
				require.Len(t, more, 3)
				assert.Same(t, &tt.v.Data[0], &more[0][0], "a field is sent from the value's memory")
			} else {
				assert.Empty(t, more)
			}
			wire, err := c.encode(tt.v)
			require.NoError(t, err)
			size, err := c.encodedSize(tt.v)
			require.NoError(t, err)
			assert.InDelta(t, len(wire), size, 400, "the size before sending is that of the value's wire form, give or take its type description")
			got, err := c.decode(wire)
			require.NoError(t, err)
			want := tt.v
			want.hidden = nil
			if len(want.More) == 0 {
				want.More = nil // as gob does
			}
			assert.Equal(t, want, got)
			if tt.split {
				inWire := func(p []byte) bool {
					start := uintptr(unsafe.Pointer(&wire[0]))
					q := uintptr(unsafe.Pointer(&p[0]))
					return q >= start && q < start+uintptr(len(wire))
				}
				assert.True(t, inWire(got.Data), "a field is received in place")
				assert.Equal(t, len(got.Data), cap(got.Data), "appending to a field cannot overwrite the next")
			}
		})
	}
}

// TestCodecSplitMalformed feeds every truncation and some corruptions of
// a split value to the decoder: each fails with an error.
func TestCodecSplitMalformed(t *testing.T) {
	c := codecFor[splitT]()
	good, err := c.encode(splitT{N: 1, Data: filled(splitMin, 1), More: []byte("m")})
	require.NoError(t, err)
	_, err = c.decode(good)
	require.NoError(t, err)
	for n := range len(good) {
		_, err := c.decode(good[:n])
		assert.Error(t, err, "truncated to %d bytes", n)
	}
	_, err = c.decode(append(bytes.Clone(good), 0))
	assert.Error(t, err, "a trailing byte")
	bad := bytes.Clone(good)
	bad[2] = 2 // the first field's index, now Name's: a string
	_, err = c.decode(bad)
	assert.Error(t, err, "a field that is not split")
	_, err = codecFor[struct{ N int }]().decode(good)
	assert.Error(t, err, "a split value for a type without byte fields")
}

// TestCodecStringInPlace checks that a large string is sent from its own
// bytes and received in the bytes it arrived in, and a small one copied.
func TestCodecStringInPlace(t *testing.T) {
	c := codecFor[string]()
	s := string(filled(largeItem, 1))
	b, err := c.encode(s)
	require.NoError(t, err)
	assert.Same(t, unsafe.StringData(s), &b[0])
	b = bytes.Clone(b)
	got, err := c.decode(b)
	require.NoError(t, err)
	assert.Equal(t, s, got)
	assert.Same(t, &b[0], unsafe.StringData(got))
	small := []byte("small")
	got, err = c.decode(small)
	require.NoError(t, err)
	small[0] = 'S'
	assert.Equal(t, "small", got, "a small string does not keep the buffer")
}
