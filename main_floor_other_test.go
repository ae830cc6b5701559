//go:build !unix

package mp_test

// serveFloor does nothing where the floor benchmarks do not build.
func serveFloor() {}
