// Package pipeline stacks bulwark's layers per executor — one executor per
// remote service ("notion", "slack", "payments") — in a fixed order:
//
//	caller
//	  └─ idempotency   same operation twice → one execution, the stored result replayed
//	      └─ fallback  breaker open or call failed → last good result, if fresh enough
//	          └─ breaker   service down → fail fast; probe; recover; request timeout
//	              └─ retry     transient error → back off and try again (Retry-After aware, budgeted)
//	                  └─ bulkhead    at most N attempts in flight (optional)
//	                      └─ ratelimit   at most R attempts per second (optional)
//	                          └─ attempt timeout   one attempt bounded (optional)
//	                              └─ rollback  attempt failed → undo its partial effects, in reverse
//	                                  └─ your function
//
// A [Stack] holds the configuration of every executor ([New] takes the
// defaults, [Stack.Configure] overrides one executor) and the executor's
// state: its circuit breaker, fallback cache, idempotency store, bulkhead,
// rate limiter and retry budget, made on first use and shared by every call to that executor whatever its
// result type. [Execute] runs one call and returns a [Result] saying what
// happened (served from cache, replayed, rejected, rolled back, attempts);
// [Do] is the same returning (T, error); [Middleware] wraps a function for
// bulwark.Chain. Per-call knobs are [CallOption] values.
//
// [Stack.Subscribe] receives the events of every layer of every executor;
// [Stack.Stats] and [Stack.Summary] report on the breakers, caches,
// bulkheads, rate limiters and retry budgets.
// [Reliable], [Unreliable] and [Critical] are ready-made configurations.
package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/rollback"
)

// ErrInvalid is wrapped by the errors of calls that cannot run as asked:
// a nil Stack, context or function, an empty executor name, an unknown
// executor ([ErrUnknownExecutor]), or an invalid call option.
// Configuration errors from New and Configure wrap it too.
var ErrInvalid = errors.New("pipeline: invalid")

// ErrUnknownExecutor is wrapped by the error of a call to an executor that
// was never configured when the Stack makes no more executors on demand:
// its on-demand limit ([Stack.SetMaxOnDemand]) is reached, or 0 (a closed
// list, so that a misspelt name fails instead of creating a new
// executor). The message names the executor. It wraps [ErrInvalid].
var ErrUnknownExecutor = fmt.Errorf("%w: unknown executor", ErrInvalid)

// DefaultMaxOnDemand is how many executors a Stack makes on demand, from
// its defaults, for names that were never configured, unless
// [Stack.SetMaxOnDemand] says otherwise. Each executor holds a breaker, a
// cache and an in-memory store, so the bound keeps names chosen by input
// (an HTTP host, a tenant) from growing memory without limit.
const DefaultMaxOnDemand = 1024

// Stack runs calls through the layers configured for their executor. Make
// one with [New] and share it: all its methods, and the functions of this
// package that take it, are safe for concurrent use. The zero Stack is not
// usable.
type Stack struct {
	mu        sync.Mutex                           // serializes configuration and subscriptions
	defaults  Config                               // for executors not configured
	execs     atomic.Pointer[map[string]*executor] // copy on write
	breakers  breaker.Group                        // one breaker per executor that has one
	listeners atomic.Pointer[[]subscriber]         // copy on write
	nextSub   uint64                               // under mu
	maxDemand int                                  // under mu: executors made on demand, at most
	onDemand  int                                  // under mu: executors made on demand so far
	forget    rollback.Guard[forgetArgs]           // forgets keys in journaled workflows
}

// New returns a Stack whose executors use defaults unless configured
// otherwise with [Stack.Configure]. It returns an error naming the layer
// and field if defaults is invalid. New copies defaults: changing it (or
// the sub-configs it points to) afterwards has no effect.
func New(defaults Config) (*Stack, error) {
	if layer, err := defaults.validate(); err != nil {
		return nil, fmt.Errorf("%w: defaults: %s: %w", ErrInvalid, layer, err)
	}
	s := &Stack{defaults: clone(defaults), maxDemand: DefaultMaxOnDemand}
	s.forget = newForgetGuard(s)
	return s, nil
}

// SetMaxOnDemand sets how many executors the Stack makes on demand: the
// first call to an executor that [Stack.Configure] never named makes it
// from the defaults, until n such executors exist; later calls to further
// unknown names fail with an error wrapping [ErrUnknownExecutor] and run
// nothing. 0 closes the list: only configured executors (and those already
// made) can be called, so a misspelt name is an error, not a new executor.
// The default is [DefaultMaxOnDemand]. Executors already made are kept;
// configured executors never count. A negative n is an error wrapping
// [ErrInvalid]. It is safe for concurrent use.
func (s *Stack) SetMaxOnDemand(n int) error {
	if s == nil {
		return fmt.Errorf("%w: nil Stack", ErrInvalid)
	}
	if n < 0 {
		return fmt.Errorf("%w: SetMaxOnDemand: %d is negative (0 closes the list of executors)", ErrInvalid, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxDemand = n
	return nil
}

// Configure gives executor its own Config, which replaces the defaults for
// it (layers are not merged: start from [Reliable] or the like and change
// what differs), except for the stack-wide settings cfg leaves unset,
// which it inherits from the defaults given to [New]: the idempotency
// Store (when cfg has an Idempotency layer with a nil Store) and the
// Logger (see [Config] for the rule). It returns an error naming the
// executor, layer and field if cfg is invalid, and then changes nothing.
//
// Configure may be called before or after the executor's first use. After
// it, the executor keeps its state where the layer stays on: the breaker
// keeps its state and statistics (see breaker.Group.Configure), the
// fallback cache keeps its entries unless MaxEntries or MaxAge changed,
// the in-memory idempotency store keeps its records, and the bulkhead and
// the rate limiter are kept while their limits (MaxConcurrent, MaxWaiting,
// MaxWait; Rate, Burst, MaxWait, Backend) are unchanged, so that the calls
// in flight keep their slots and a spent token bucket stays spent (a new
// OnEvent or Logger reaches them). Calls in progress finish with the
// layers they started with: after a change of limits, the calls in flight
// on the old bulkhead are not counted by the new one.
func (s *Stack) Configure(executor string, cfg Config) error {
	if s == nil {
		return fmt.Errorf("%w: nil Stack", ErrInvalid)
	}
	if executor == "" {
		return fmt.Errorf("%w: empty executor name", ErrInvalid)
	}
	if layer, err := cfg.validate(); err != nil {
		return fmt.Errorf("%w: executor %q: %s: %w", ErrInvalid, executor, layer, err)
	}
	cfg = s.inherit(clone(cfg))
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.lookup(executor); e != nil {
		return e.configureLocked(cfg)
	}
	_, err := s.addLocked(executor, cfg)
	return err
}

// inherit fills in the stack-wide settings that cfg, an executor's own
// Config, leaves unset: the defaults' idempotency Store and Logger.
func (s *Stack) inherit(cfg Config) Config {
	if cfg.Idempotency != nil && cfg.Idempotency.Store == nil && s.defaults.Idempotency != nil {
		cfg.Idempotency.Store = s.defaults.Idempotency.Store
	}
	if cfg.Logger == nil {
		cfg.Logger = s.defaults.Logger
	}
	return cfg
}

// Executors returns the names of the executors that exist (configured or
// used), sorted.
func (s *Stack) Executors() []string {
	m := s.execs.Load()
	if m == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(*m))
}

// Breaker returns the circuit breaker of executor, or nil if the executor
// does not exist yet or has no breaker. Use it for operator controls
// (Reset, ForceOpen) and state checks.
func (s *Stack) Breaker(executor string) *breaker.Breaker {
	if e := s.lookup(executor); e != nil {
		return e.layers.Load().breaker
	}
	return nil
}

// HasFallback reports whether calls to executor go through a Fallback
// layer: the executor's own layers if it exists, and otherwise the
// defaults it would be made from. Code above the stack uses it to skip
// preparing what only the fallback needs (bulwarkhttp keeps no copy of a
// response for an executor without one). It takes no lock and allocates
// nothing; a nil Stack has none.
func (s *Stack) HasFallback(executor string) bool {
	if s == nil {
		return false
	}
	if e := s.lookup(executor); e != nil {
		return e.layers.Load().cache != nil
	}
	return s.defaults.Fallback != nil
}

// lookup returns the executor named name, or nil. It takes no lock.
func (s *Stack) lookup(name string) *executor {
	if m := s.execs.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// executor returns the executor named name, making it from the defaults
// on first use.
func (s *Stack) executor(name string) (*executor, error) {
	if e := s.lookup(name); e != nil {
		return e, nil
	}
	if name == "" {
		return nil, fmt.Errorf("%w: empty executor name", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.lookup(name); e != nil {
		return e, nil
	}
	if s.onDemand >= s.maxDemand {
		return nil, fmt.Errorf("%w %q: not configured, and the stack makes at most %d executors on demand", ErrUnknownExecutor, name, s.maxDemand)
	}
	e, err := s.addLocked(name, s.defaults)
	if err == nil {
		s.onDemand++
	}
	return e, err
}

// addLocked makes the executor name with the layers of cfg and publishes
// it: no call can see an executor whose layers are not built yet.
func (s *Stack) addLocked(name string, cfg Config) (*executor, error) {
	e := &executor{name: name, stack: s}
	e.layers.Store(&layers{})
	if err := e.configureLocked(cfg); err != nil {
		return nil, err
	}
	next := make(map[string]*executor)
	if m := s.execs.Load(); m != nil {
		maps.Copy(next, *m)
	}
	next[name] = e
	s.execs.Store(&next)
	return e, nil
}

// clone copies cfg and the sub-configs it points to.
func clone(cfg Config) Config {
	c := cfg
	if cfg.Idempotency != nil {
		v := *cfg.Idempotency
		c.Idempotency = &v
	}
	if cfg.Fallback != nil {
		v := *cfg.Fallback
		c.Fallback = &v
	}
	if cfg.Breaker != nil {
		v := *cfg.Breaker
		c.Breaker = &v
	}
	if cfg.Retry != nil {
		v := *cfg.Retry
		if v.Budget != nil {
			b := *v.Budget
			v.Budget = &b
		}
		c.Retry = &v
	}
	if cfg.Bulkhead != nil {
		v := *cfg.Bulkhead
		c.Bulkhead = &v
	}
	if cfg.RateLimit != nil {
		v := *cfg.RateLimit
		c.RateLimit = &v
	}
	if cfg.Rollback != nil {
		v := *cfg.Rollback
		c.Rollback = &v
	}
	return c
}
