// Command applyasync is the Go twin of the seed's §5: 100 apply_async on
// Pool(8), close, then join.
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
	if err := seed.ApplyAsync(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}
