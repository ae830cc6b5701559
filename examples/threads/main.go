// Command threads is the Go twin of the seed's §2: two threads that print
// their name, joined before "main" is printed.
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
	if err := seed.Threads(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}
