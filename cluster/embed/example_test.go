package embed_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mpgo/mp/cluster/embed"
	"github.com/nats-io/nats.go"
)

func ExampleRun() {
	srv, err := embed.Run(context.Background(), embed.Port(0))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()

	// Worker processes on this machine connect by URL, with the token.
	nc, err := nats.Connect(srv.URL(), nats.Token(srv.Token()))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	fmt.Println(nc.IsConnected())
	// Output: true
}
