// Command apply is the Go twin of the seed's §6: 100 blocking apply on
// Pool(8), one at a time, then close and join.
package main

import (
	"context"
	"log"
	"os"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
)

func main() {
	mp.Main()
	if err := seed.Apply(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}
