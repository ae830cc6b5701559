package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream names of a pool or queue called name:
//
//	pool:  stream MP_<name>, subjects mp.<name>.t.<submitter>, durable
//	       consumer "workers"; cancellations on mp.<name>.cancel (core NATS)
//	queue: stream MPQ_<name>, items on mpq.<name>.items, the close mark on
//	       mpq.<name>.closed, durable consumer "consumers"
const (
	workersConsumer   = "workers"
	consumersConsumer = "consumers"
	// embedMemoryPrefix is embed.MemoryServerPrefix, which this package
	// cannot import without linking the server.
	embedMemoryPrefix = "mp-embed-memory-"
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func checkName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("cluster: invalid name %q: use 1 to 64 letters, digits, '_' or '-'", name)
	}
	return nil
}

// storageFor returns the storage of a stream that c creates on the server
// js is connected to.
func storageFor(js jetstream.JetStream, c *config) jetstream.StorageType {
	if c.storage != nil {
		return *c.storage
	}
	if strings.HasPrefix(js.Conn().ConnectedServerName(), embedMemoryPrefix) {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// ensureStream creates the stream of cfg, or returns it if it exists, so
// that a submitter and a worker may start in either order; a stream that
// exists keeps its configuration.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, cfg.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// ensureConsumer returns the durable consumer of cfg on s, creating it if
// it does not exist, or making its limits cfg's if update is set.
func ensureConsumer(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig, update bool) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	var err error
	if update {
		c, err = s.CreateOrUpdateConsumer(ctx, cfg)
	} else {
		c, err = s.Consumer(ctx, cfg.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			c, err = s.CreateOrUpdateConsumer(ctx, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}

func poolStream(name string) string    { return "MP_" + name }
func poolPrefix(name string) string    { return "mp." + name + ".t." }
func cancelSubject(name string) string { return "mp." + name + ".cancel" }

// poolSetup creates or opens the stream and consumer of pool name.
func poolSetup(ctx context.Context, js jetstream.JetStream, name string, c *config, update bool) (jetstream.Stream, jetstream.Consumer, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	s, err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        poolStream(name),
		Description: "tasks of the mp pool " + name,
		Subjects:    []string{poolPrefix(name) + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storageFor(js, c),
	})
	if err != nil {
		return nil, nil, err
	}
	cons, err := ensureConsumer(ctx, s, jetstream.ConsumerConfig{
		Durable:       workersConsumer,
		FilterSubject: poolPrefix(name) + ">",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.ackWait,
		MaxDeliver:    c.maxDeliver,
		MaxAckPending: 1 << 16,
	}, update)
	if err != nil {
		return nil, nil, err
	}
	return s, cons, nil
}
