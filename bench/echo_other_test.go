//go:build !unix

package bench

// serveEcho does nothing where the echo floor does not build.
func serveEcho() {}
