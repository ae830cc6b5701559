// Command forgotmain starts a process but never calls mp.Main: the
// program the forgot-Main guard protects against.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/mpgo/mp"
)

func hello(_ context.Context, s string) (string, error) { return "hello " + s, nil }

func init() { mp.Register(hello) }

func main() {
	// mp.Main() is missing on purpose.
	p := mp.NewProcess(hello, "world")
	if err := p.Start(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println(p.Join(context.Background()))
}
