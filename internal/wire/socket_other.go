//go:build !unix

package wire

import "io"

// tryWriterOf returns w as a TryWriter if it is one. Elsewhere than on
// Unix, a stream that is not one is written by the Writer's goroutine.
func tryWriterOf(w io.Writer) TryWriter {
	t, _ := w.(TryWriter)
	return t
}

// readerOf returns r: elsewhere than on Unix, a Reader reads the stream
// itself.
func readerOf(r io.Reader) io.Reader { return r }
