// Package embed runs a NATS JetStream server inside the calling process,
// so that a program using package cluster needs no server of its own to
// start with: one command runs the submitter, the workers and the server
// on a laptop, and the same program later points at a real cluster by URL.
//
// Only programs that import embed link the server. It adds some 15 MiB to
// a binary and about 7 ms of package initialization to every start of
// it, which mp pays again in each child process it re-executes, so the
// server lives in this package and package cluster does not import it.
//
// By default the server opens no port: the process reaches it through an
// in-process connection ([Server.Conn], [Server.Connect]). [Port] makes it
// also listen on 127.0.0.1, for worker processes on the same machine;
// it then requires a token, generated unless [Token] names one, that
// workers pass with nats.Token. No option makes it listen on another
// address: a server that other machines reach is a real nats-server
// deployment with TLS and credentials.
package embed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MemoryServerPrefix begins the name of an embedded server that keeps its
// streams in memory. Package cluster creates the streams of a pool or
// queue in memory when the server it is connected to has such a name,
// and in files otherwise, so that every process connected to one server
// agrees without being told.
const MemoryServerPrefix = "mp-embed-memory-"

// DefaultMaxPayload is the largest message the embedded server accepts
// by default: 8 MiB, headers included. NATS's own default of 1 MiB would
// refuse a 1 MiB item once mp's headers are added. A larger item is an
// error at the call that sends it, never dropped.
const DefaultMaxPayload = 8 << 20

// Option configures [Run].
type Option interface{ apply(*config) }

type config struct {
	dir        string
	port       int
	token      string
	maxPayload int32
	ready      time.Duration
	logf       func(format string, args ...any)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// StoreDir keeps the server's streams in files under dir, so that what
// was queued survives a restart of the server on the same dir. Without
// it streams live in memory and vanish with the server.
func StoreDir(dir string) Option {
	if dir == "" {
		panic("mp: embed.StoreDir with an empty directory")
	}
	return optionFunc(func(c *config) { c.dir = dir })
}

// Port makes the server listen for clients on 127.0.0.1:port, and on a
// free port chosen by the system when port is 0; [Server.URL] tells
// which. Clients must then authenticate with [Server.Token]. Port panics
// if port is negative or above 65535.
func Port(port int) Option {
	if port < 0 || port > 65535 {
		panic("mp: embed.Port out of range: " + strconv.Itoa(port))
	}
	return optionFunc(func(c *config) {
		c.port = port
		if port == 0 {
			c.port = server.RANDOM_PORT
		}
	})
}

// Token sets the token that clients of a listening server must present,
// instead of a generated one. Token panics if tok is empty.
func Token(tok string) Option {
	if tok == "" {
		panic("mp: embed.Token with an empty token")
	}
	return optionFunc(func(c *config) { c.token = tok })
}

// MaxPayload sets the largest message the server accepts, headers
// included; the default is [DefaultMaxPayload]. MaxPayload panics if n is
// not positive.
func MaxPayload(n int32) Option {
	if n <= 0 {
		panic("mp: embed.MaxPayload must be positive")
	}
	return optionFunc(func(c *config) { c.maxPayload = n })
}

// Logf makes the server log its notices, warnings and errors through
// logf; by default it logs nothing.
func Logf(logf func(format string, args ...any)) Option {
	return optionFunc(func(c *config) { c.logf = logf })
}

// Server is a JetStream server running in the calling process.
//
// A Server is safe for concurrent use by multiple goroutines. The zero
// value is not usable; use [Run].
type Server struct {
	srv     *server.Server
	tmp     string // a store directory Run made, removed by Shutdown
	token   string
	memory  bool
	url     string
	stopCtx func() bool

	mu     sync.Mutex
	conn   *nats.Conn
	closed bool
	down   chan struct{} // closed when Shutdown has finished
}

// Run starts a JetStream server in the calling process and returns once
// it accepts connections. The server runs until [Server.Shutdown] is
// called or ctx is done, whichever comes first; ctx also bounds the
// start.
func Run(ctx context.Context, opts ...Option) (*Server, error) {
	c := config{maxPayload: DefaultMaxPayload, ready: 10 * time.Second}
	for _, o := range opts {
		o.apply(&c)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Server{memory: c.dir == "", down: make(chan struct{})}
	dir := c.dir
	if dir == "" {
		// JetStream insists on a store directory even when every stream
		// is in memory; it holds only the server's metadata then.
		tmp, err := os.MkdirTemp("", "mp-embed-")
		if err != nil {
			return nil, fmt.Errorf("embed: %w", err)
		}
		s.tmp, dir = tmp, tmp
	}
	name := "mp-embed-file-" + nats.NewInbox()[len(nats.InboxPrefix):]
	if s.memory {
		name = MemoryServerPrefix + nats.NewInbox()[len(nats.InboxPrefix):]
	}
	so := &server.Options{
		ServerName: name,
		DontListen: c.port == 0,
		Host:       "127.0.0.1",
		Port:       c.port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      c.logf == nil,
		MaxPayload: c.maxPayload,
		// A client that falls this far behind is cut off with an error
		// it sees, rather than anything dropped silently; it must hold
		// a few of the largest messages.
		MaxPending: max(int64(server.MAX_PENDING_SIZE), 8*int64(c.maxPayload)),
	}
	if c.port != 0 {
		// The port is only on loopback, but whoever can reach it can run
		// every registered task of every pool on the server, so it never
		// opens without authentication.
		s.token = c.token
		if s.token == "" {
			b := make([]byte, 24)
			_, _ = rand.Read(b) // crypto/rand.Read never fails
			s.token = hex.EncodeToString(b)
		}
		so.Authorization = s.token
	}
	srv, err := server.NewServer(so)
	if err != nil {
		s.removeTmp()
		return nil, fmt.Errorf("embed: %w", err)
	}
	if c.logf != nil {
		srv.SetLogger(logger(c.logf), false, false)
	}
	s.srv = srv
	srv.Start()
	deadline := c.ready
	if d, ok := ctx.Deadline(); ok {
		deadline = min(deadline, time.Until(d))
	}
	if !srv.ReadyForConnections(deadline) {
		srv.Shutdown()
		srv.WaitForShutdown()
		s.removeTmp()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("embed: the server did not become ready for connections")
	}
	if c.port != 0 {
		s.url = "nats://" + srv.Addr().String()
	}
	s.stopCtx = context.AfterFunc(ctx, s.Shutdown)
	return s, nil
}

// URL returns the address on which the server listens, as
// nats://127.0.0.1:port, or "" if it was started without [Port].
func (s *Server) URL() string { return s.url }

// Token returns the token that clients of a listening server present
// (nats.Token(s.Token())), or "" if the server does not listen.
func (s *Server) Token() string { return s.token }

// Memory reports whether the server keeps its streams in memory, that is
// whether it was started without [StoreDir].
func (s *Server) Memory() bool { return s.memory }

// Connect opens a new in-process connection to the server with the given
// nats.go options; the caller closes it. It is how a program gives each
// of its parts (a submitter, a worker) a connection of its own.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := []nats.Option{nats.InProcessServer(s.srv), nats.Name("mp-embed")}
	if s.token != "" {
		all = append(all, nats.Token(s.token))
	}
	nc, err := nats.Connect("", append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("embed: connect: %w", err)
	}
	return nc, nil
}

// Conn returns the server's own in-process connection, opened on first
// use and closed by [Server.Shutdown].
func (s *Server) Conn() (*nats.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("embed: server shut down")
	}
	if s.conn == nil {
		nc, err := s.Connect()
		if err != nil {
			return nil, err
		}
		s.conn = nc
	}
	return s.conn, nil
}

// JetStream returns a JetStream context on [Server.Conn].
func (s *Server) JetStream() (jetstream.JetStream, error) {
	nc, err := s.Conn()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	return js, nil
}

// Shutdown closes the connection of [Server.Conn], stops the server,
// waits until every goroutine of the server has ended, and removes the
// temporary store directory of a server started without [StoreDir].
// Connections opened with [Server.Connect] are cut off; their owners
// still close them. A second call waits for the first to finish.
func (s *Server) Shutdown() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.down
		return
	}
	s.closed = true
	nc := s.conn
	s.mu.Unlock()
	s.stopCtx()
	if nc != nil {
		nc.Close()
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.removeTmp()
	close(s.down)
}

func (s *Server) removeTmp() {
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
}

// logger adapts a printf-style function to the server's Logger.
type logger func(format string, args ...any)

func (l logger) Noticef(format string, v ...any) { l("nats: "+format, v...) }
func (l logger) Warnf(format string, v ...any)   { l("nats: warning: "+format, v...) }
func (l logger) Fatalf(format string, v ...any)  { l("nats: fatal: "+format, v...) }
func (l logger) Errorf(format string, v ...any)  { l("nats: error: "+format, v...) }
func (l logger) Debugf(format string, v ...any)  {}
func (l logger) Tracef(format string, v ...any)  {}
