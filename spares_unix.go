//go:build unix

package mp

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// serviceSpare is the child-side service that turns a spare into a child:
// a message whose header is the mode byte ('p' for a Process child, 'w'
// for a pool worker) then the child's name, and whose raw part is the
// environment variables to set, "KEY=value" each followed by a NUL. It is
// a notification for a Process child, and for a pool worker a request,
// answered once the worker ignores SIGINT.
const serviceSpare = "mp.spare"

// spare is a child started ahead of need and waiting for a task, with what
// it was started with, to tell whether a start can take it.
type spare struct {
	ch *child
	setting
}

// spareSet holds the spares. A waiting spare costs the parent no
// goroutine (goleak sees none), only two descriptors (its connection and
// the pidfd os/exec keeps): its death is noticed when a start would take
// it, and it is reaped then.
type spareSet struct {
	mu       sync.Mutex
	want     int     // -1 until read from MP_SPARES
	last     setting // the setting of the last refill, for set's
	ready    []*spare
	starting []*pendingSpare
	pids     map[int]struct{} // every spare's, from its start until it is handed a task or ended
	// noCheck makes take skip its check that a spare is alive, so that
	// tests can hand a task to a dead spare.
	noCheck bool
}

// pendingSpare is a spare being started. A start that finds no spare
// ready may claim one being started, which is further along than a new
// exec would be; only one start may claim it, so that starts from many
// goroutines do not queue behind one spare.
type pendingSpare struct {
	done    chan struct{} // closed once sp is set
	sp      *spare        // nil if the spare failed to start
	claimed bool          // under spareSet.mu
}

var spares = spareSet{want: -1, pids: map[int]struct{}{}}

// track records the pid of a spare as a spare's, or with on false forgets
// it.
func (s *spareSet) track(pid int, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.pids[pid] = struct{}{}
	} else {
		delete(s.pids, pid)
	}
}

// wanted returns the number of spares to keep; call it with mu held.
func (s *spareSet) wanted() int {
	if s.want < 0 {
		s.want = sparesFromEnv()
	}
	return s.want
}

// on reports whether spares are wanted.
func (s *spareSet) on() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wanted() > 0
}

// set sets the number of spares to keep and ends those beyond it.
func (s *spareSet) set(n int) int {
	s.mu.Lock()
	prev := s.wanted()
	s.want = n
	// Wait for the spares being started, so that none outlives a call
	// that lowered the count.
	var pending []*pendingSpare
	if n < prev {
		pending = slices.Clone(s.starting)
	}
	s.mu.Unlock()
	for _, p := range pending {
		<-p.done
	}
	s.mu.Lock()
	var extra []*spare
	if len(s.ready) > n {
		extra = slices.Clone(s.ready[n:])
		s.ready = s.ready[:n]
	}
	s.mu.Unlock()
	for _, sp := range extra {
		sp.discard()
	}
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	if n > prev && last.env != nil {
		s.refill(last)
	}
	return prev
}

// The program's own standard output and error, as they were before main
// could replace them. A spare is started only while they are in place: a
// spare holds what it inherited until it is used or the program exits,
// and a stand-in (the pipe of a test capturing an example's output, say)
// must not be held open after it is put back.
var programStdout, programStderr = os.Stdout, os.Stderr

// refill starts spares in the background until as many are ready or
// being started as wanted. Nothing is started before the program has
// started a child, so that a program that starts none has no spare.
// They start with now, which the caller read on its own goroutine.
func (s *spareSet) refill(now setting) {
	if now.stdout != programStdout || now.stderr != programStderr {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = now
	for n := s.wanted() - len(s.ready) - len(s.starting); n > 0; n-- {
		p := &pendingSpare{done: make(chan struct{})}
		s.starting = append(s.starting, p)
		go s.start(p, now)
	}
}

// start starts the spare p and files it as ready, unless a start claimed
// it meanwhile or the count was lowered. p counts as being started, and
// p.done stays open, until a spare that is not wanted has been ended, so
// that set, which waits for p.done, returns with no such spare left.
func (s *spareSet) start(p *pendingSpare, now setting) {
	sp, err := startSpare(now)
	s.mu.Lock()
	keep := err == nil && !p.claimed && len(s.ready) < s.wanted()
	if keep {
		s.ready = append(s.ready, sp)
	}
	if p.claimed {
		p.sp = sp
	}
	drop := err == nil && !keep && !p.claimed
	s.mu.Unlock()
	if drop {
		sp.discard()
	}
	s.mu.Lock()
	s.starting = slices.DeleteFunc(s.starting, func(q *pendingSpare) bool { return q == p })
	close(p.done)
	s.mu.Unlock()
}

// refillDelay is how long after a spare is handed its task the next spare
// starts, if the child has not ended by then. It is longer than a trivial
// task's child takes to run and exit (a few hundred microseconds), so
// that a server starting a child per request pays for no exec meanwhile.
const refillDelay = 2 * time.Millisecond

// spareHelloTimeout bounds the wait for a spare's handshake. Nothing waits
// for a spare but its starter, so it is as long as a child's.
const spareHelloTimeout = 10 * time.Second

// take hands the start o to a spare and returns the child, or returns nil
// when no spare can honour it; the caller then starts a child afresh.
func (s *spareSet) take(o spawnOptions) *child {
	gomaxprocs, ok := spareCanTake(o)
	if !ok {
		return nil
	}
	s.mu.Lock()
	if s.wanted() == 0 || (len(s.ready) == 0 && len(s.starting) == 0) {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	now := currentSetting()
	if now.stdout != programStdout || now.stderr != programStderr {
		// Set aside for a moment (a test capturing an example's
		// output, say): the spares wait for the program's own.
		return nil
	}
	s.mu.Lock()
	for len(s.ready) > 0 {
		sp := s.ready[0]
		s.ready = s.ready[1:]
		if !sp.matches(now) || (!s.noCheck && !sp.alive()) {
			// Another spare may still fit; this one will not.
			go sp.discard()
			continue
		}
		s.mu.Unlock()
		return sp.hand(o, gomaxprocs, now)
	}
	var p *pendingSpare
	for _, q := range s.starting {
		if !q.claimed {
			p = q
			break
		}
	}
	if p == nil {
		s.mu.Unlock()
		return nil
	}
	p.claimed = true
	s.mu.Unlock()
	<-p.done
	sp := p.sp
	if sp == nil {
		return nil
	}
	if !sp.matches(now) || (!s.noCheck && !sp.alive()) {
		go sp.discard()
		return nil
	}
	return sp.hand(o, gomaxprocs, now)
}

// spareCanTake reports whether a spare can honour the start o, and the
// environment variables it must set then: those of o.env, which may only
// set GOMAXPROCS.
func spareCanTake(o spawnOptions) (env []string, ok bool) {
	// A Stderr that is set, even to os.Stderr, also keeps the tail of
	// what the child writes for ExitError, which a spare cannot.
	if o.stderr != nil {
		return nil, false
	}
	if o.stdout != nil && o.stdout != io.Writer(os.Stdout) {
		return nil, false
	}
	for _, kv := range o.env {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			return nil, false
		}
	}
	return o.env, true
}

// currentSetting returns what a child started now would inherit.
func currentSetting() setting {
	dir, _ := syscall.Getwd()
	return setting{env: childEnviron(), args: os.Args, dir: dir, stdout: os.Stdout, stderr: os.Stderr}
}

// matches reports whether the spare started as a child started now would.
func (sp *spare) matches(now setting) bool {
	return sp.dir == now.dir && sp.stdout == now.stdout && sp.stderr == now.stderr &&
		slices.Equal(sp.env, now.env) && slices.Equal(sp.args, now.args)
}

// alive reports whether the spare is still waiting: a spare sends nothing
// after its handshake until it has a task, so anything to read, the end
// of the stream above all, means that it is gone.
func (sp *spare) alive() bool {
	sc, ok := sp.ch.conn.Stream.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	rc.Control(func(fd uintptr) {
		var b [1]byte
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == syscall.EINTR {
				continue
			}
			alive = err == syscall.EAGAIN
			return
		}
	})
	return alive
}

// startSpare starts a spare and waits for its handshake.
func startSpare(now setting) (*spare, error) {
	ch, parentFD, token, err := startChild(spawnOptions{spare: true, inherit: &now})
	if err != nil {
		return nil, err
	}
	spares.track(ch.pid, true)
	sp := &spare{ch: ch, setting: now}
	parentEnd, err := pollableEnd(parentFD, "mp-parent")
	if err != nil {
		sp.discard()
		return nil, fmt.Errorf("mp: socketpair: %w", err)
	}
	ch.conn = wire.NewConn(parentEnd, 0, errorCodec{})
	// No reaper watches a spare, so its early exit shows as the end of
	// the stream, or failing that as the deadline passing.
	ch.conn.Stream.SetReadDeadline(time.Now().Add(spareHelloTimeout))
	f, err := ch.conn.ReadFrame()
	ch.conn.Stream.SetReadDeadline(time.Time{})
	if err == nil && (f.Kind != wire.KindHello || string(f.Header) != token) {
		err = fmt.Errorf("mp: spare process %d sent a bad handshake", ch.pid)
	}
	if err != nil {
		sp.discard()
		return nil, err
	}
	// The spare has cleared its parent-death signal before its handshake
	// (it watches its connection instead), so the spawner thread, which
	// would kill it on exiting, need not wait for it.
	ch.holdsSpawner = false
	releaseSpawner()
	return sp, nil
}

// discard ends a spare that will not be used and reaps it.
func (sp *spare) discard() {
	ch := sp.ch
	_ = ch.signal(sigKill)
	ch.reap()
	spares.track(ch.pid, false)
	if ch.conn != nil {
		ch.conn.Close()
	}
}

// hand makes the spare the child of the start o: it sends the spare its
// name, mode and environment, then o.first, in one write, and from then on
// the child is watched and listed as a cold child is. A spare that died
// after alive looked is reported as that child's exit, as a cold child
// that dies before running its task is.
func (sp *spare) hand(o spawnOptions, env []string, now setting) *child {
	ch := sp.ch
	ch.name, ch.worker = o.name, o.worker
	// The next spare starts once this child has ended or refillDelay
	// after it was handed its task, whichever comes first: an exec
	// meanwhile would compete with the child for the processors and
	// slow down the very start the spare was for. A pool worker lives
	// on, so its replacement spare starts at once.
	delay := refillDelay
	if o.worker {
		delay = 0
	}
	refill := time.AfterFunc(delay, func() { spares.refill(now) })
	ch.onReaped = func() {
		if o.reaped != nil {
			o.reaped()
		}
		if refill.Stop() {
			spares.refill(now)
		}
	}
	spares.track(ch.pid, false)
	addChild(ch)
	go ch.reap()
	mode := byte('p')
	if o.worker {
		mode = 'w'
	}
	var raw []byte
	for _, kv := range env {
		raw = append(append(raw, kv...), 0)
	}
	hdr := append([]byte{mode}, o.name...)
	// Errors surface as the connection's end, which the owner of the
	// child sees as it would a cold child's death. A worker is asked,
	// and its answer awaited below, so that it ignores SIGINT, as a
	// worker started afresh does, by the time the pool counts it.
	assign := wire.Message{Header: hdr, Raw: raw}
	var ack *wire.Call
	if o.worker {
		ack, _ = ch.conn.Start(serviceSpare, assign)
	} else {
		_ = ch.conn.Notify(serviceSpare, assign)
	}
	if o.first != nil {
		cl, err := ch.conn.Start(o.first.service, o.first.msg)
		if err != nil {
			// The spare died after alive looked: its end of the
			// socket is closed. Its exit is what the owner reports.
			cl = &wire.Call{Done: make(chan struct{}), Err: fmt.Errorf("%w: %w", wire.ErrConnLost, err)}
			close(cl.Done)
		}
		ch.first = cl
	}
	ch.serve()
	if ack != nil {
		_, _ = ch.await(ack)
	}
	return ch
}
