// Command poolmap is the Go twin of the seed's §4: Pool(8).map over
// range(100), then close and join.
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
	if err := seed.PoolMap(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}
