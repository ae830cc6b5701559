// Package bench holds the benchmarks that compare package mp with the best
// Go worker pools (ants, pond, conc, errgroup), with hand-written floors
// (the least a correct program of the same shape can cost) and, through
// cmd/compare, with the Python programs in python/.
//
// Every workload is a family of sub-benchmarks named
// Benchmark<Workload>/<implementation>: "mp" is the library, names starting
// with "floor" are floors and every other name is a Go peer. Each benchmark
// reports ns/task (or ns/item), the cost of one task, so that figures taken
// with different batch sizes compare directly.
package bench
