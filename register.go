package mp

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/mpgo/mp/internal/wire"
)

// Register records f so that a child process can find it again by its
// qualified name, and returns f, so that both forms work:
//
//	func init() { mp.Register(square) }
//	var square = mp.Register(func(ctx context.Context, x int) (int, error) { ... })
//
// Register is the Go twin of Python pickling a function by reference: a
// child process is a fresh run of the same binary, its package
// initialisation registers the same functions under the same names, and a
// request names the function to run. Call it only from package
// initialisation (an init function or a package-level variable), before
// [Main] runs.
//
// Register panics with an "mp: ..." message when f is nil, when a function
// with the same name and type is already registered, when called after
// Main, and when f is a closure whose code was already registered: two
// closures made by the same function literal share their code and differ
// only in what they captured, which a child cannot rebuild. For the same
// reason a process API given a closure other than the registered one fails
// with [ErrNotRegistered]. Method values (x.Method) are closures too:
// register one and pass the value Register returned. Closures are told
// apart by their code address: where the compiler copied a literal while
// inlining, each copy is a function of its own, with its own name, and
// works as a separate task.
//
// In a child the task's ctx is cancelled when the parent withdraws the
// request (a process pool's deadline) or the connection to the parent is
// lost; in the latter case the child also exits at once. On Linux a
// [Process] child whose task uses no queue does not watch its connection:
// the parent-death signal ends it when the parent dies.
func Register[A, R any](f Func[A, R]) Func[A, R] {
	if f == nil {
		panic("mp: Register of a nil function")
	}
	if mainCalled.Load() {
		panic("mp: Register called after mp.Main; register tasks at package level (in init or a package-level variable)")
	}
	pc := reflect.ValueOf(f).Pointer()
	name := funcName(pc)
	key := name + " " + reflect.TypeOf(f).String()
	argCodec, resCodec := codecFor[A]().as(roleArg+" of "+name), codecFor[R]().as(roleResult+" of "+name)
	e := &entry{
		name:     key,
		header:   []byte(key),
		fv:       funcValue(f),
		runBatch: batchRunner(f, name),
		run: func(ctx context.Context, c *wire.Conn, arg []byte) ([]byte, error) {
			a, err := argCodec.decodeOn(c, arg)
			if err != nil {
				return nil, err
			}
			r, err := callTask(ctx, f, a)
			if err != nil {
				return nil, err
			}
			b, err := resCodec.encodeOn(c, r)
			if err != nil {
				return nil, unencodable("result of "+name, err)
			}
			return b, nil
		},
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if old, ok := registry.byPC[pc]; ok {
		if old.fv != e.fv {
			panic("mp: Register of a second closure of " + name + ": closures made by the same function literal cannot be told apart in a child process; register one closure, or use package-level functions")
		}
		panic("mp: duplicate Register of " + name)
	}
	if _, ok := registry.byName[key]; ok {
		panic("mp: duplicate Register of " + name)
	}
	registry.byPC[pc] = e
	registry.byName[key] = e
	return f
}

// entry is a registered task with its types erased.
type entry struct {
	name string         // qualified name and type: the key a child looks up
	fv   unsafe.Pointer // the func value, to tell closures of one literal apart
	// header is name as the header of a run request, made once rather
	// than per task; it is never written to.
	header []byte
	// run decodes the argument, runs the task under recover and encodes
	// its result, for the peer at the other end of c.
	run func(ctx context.Context, c *wire.Conn, arg []byte) ([]byte, error)
	// runBatch is run for a batch of arguments (a process pool's Map
	// chunk): it runs the task on each in turn and encodes the results.
	runBatch func(ctx context.Context, c *wire.Conn, arg []byte) ([]byte, error)
}

var (
	registry = struct {
		mu     sync.Mutex
		byPC   map[uintptr]*entry
		byName map[string]*entry
	}{byPC: map[uintptr]*entry{}, byName: map[string]*entry{}}

	// mainCalled is set by Main; Register after it panics, because a child
	// started before such a Register would not know the function.
	mainCalled atomic.Bool
)

func funcName(pc uintptr) string {
	if fn := runtime.FuncForPC(pc); fn != nil {
		return fn.Name()
	}
	return fmt.Sprintf("func@%#x", pc)
}

// funcValue returns the address of the closure record behind f: static
// for a top-level function or a literal that captures nothing, a fresh
// allocation for each evaluation of a literal that captures variables.
func funcValue[A, R any](f Func[A, R]) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&f))
}

// registered returns the registry key of f, or an error wrapping
// ErrNotRegistered that names f and says how to register it.
func registered[A, R any](f Func[A, R]) (*entry, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: nil function", ErrNotRegistered)
	}
	pc := reflect.ValueOf(f).Pointer()
	registry.mu.Lock()
	e, ok := registry.byPC[pc]
	registry.mu.Unlock()
	if !ok {
		name := funcName(pc)
		return nil, fmt.Errorf("%w: %s cannot run in a child process until it is registered at package level: func init() { mp.Register(%s) }", ErrNotRegistered, name, shortName(name))
	}
	if e.fv != funcValue(f) {
		return nil, fmt.Errorf("%w: %s is a different closure from the one registered; a child process would run the registered one with its captured values, so pass the value mp.Register returned", ErrNotRegistered, funcName(pc))
	}
	return e, nil
}

// lookup finds a task by its registry key, in a child.
func lookup(name string) (*entry, bool) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	e, ok := registry.byName[name]
	return e, ok
}

// shortName turns "example.com/m/pkg.square" into "square", the name a
// user writes in the package that declares it.
func shortName(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			name = name[i+1:]
			break
		}
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			return name[i+1:]
		}
	}
	return name
}
