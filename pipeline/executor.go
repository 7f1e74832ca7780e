package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/callvalue"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// executor is the state of one remote service: its configuration and the
// layers built from it. The layers are replaced as a whole when the
// executor is configured again; calls in progress keep the ones they
// started with.
type executor struct {
	name   string
	stack  *Stack
	layers atomic.Pointer[layers]

	// Kept across reconfiguration, under stack.mu.
	memStore *idempotency.MemoryStore // the in-memory store, made on first need

	replays atomic.Int64 // idempotency:replayed events seen, for Stats
}

// layers are the built layers of an executor for one configuration.
type layers struct {
	cfg         Config
	idem        *idempotency.Manager
	forgetName  string // the name of the compensation that forgets a key
	executor    string // the executor's name
	forget      rollback.Guard[forgetArgs]
	cache       *cache.Cache[string, any]
	cacheCfg    cache.Config
	fallbackCfg cache.FallbackConfig
	breaker     *breaker.Breaker
	retry       *retry.Retrier
	rollback    *rollback.Config

	bulkhead       *bulkhead.Bulkhead
	limiter        *ratelimit.Limiter
	maxPause       time.Duration // the longest pause a Retry-After gives the limiter
	attemptTimeout time.Duration // 0: off

	mu     sync.Mutex                  // serializes adding chains
	chains atomic.Pointer[[]typedFunc] // copy on write; an executor sees few result types
}

// typedFunc is the chain built for one result type.
type typedFunc struct {
	t  reflect.Type
	fn any // bulwark.Func[T] for T = t
}

// configureLocked builds the layers of cfg, keeping the state of the
// current ones where it can, and publishes them. cfg was validated.
func (e *executor) configureLocked(cfg Config) error {
	return e.buildLocked(cfg, false)
}

// rewireLocked rebuilds the layers of the current configuration after the
// stack's first subscriber came or its last one left, so that the layers
// whose events cost something on a hot path (the breaker's per-call
// events, the fallback's) report only while someone listens. Every
// layer's state is kept: the idempotency Manager, the Retrier (and its
// budget), the bulkhead and the rate limiter are reused as they are
// (their listeners are always installed: their events come only off the
// success path).
func (e *executor) rewireLocked() error {
	return e.buildLocked(e.layers.Load().cfg, true)
}

// optionalListener is listener(own, logger) when someone listens (own is
// set, the stack has subscribers, or logger records events at level, the
// lowest level of the layer's events), and nil otherwise, so that the
// layer builds no events at all.
func (e *executor) optionalListener(own bulwark.Listener, logger *slog.Logger, level slog.Level) bulwark.Listener {
	if own == nil && !e.stack.hasListeners() && (logger == nil || !logger.Enabled(context.Background(), level)) {
		return nil
	}
	return e.listener(own, logger)
}

// breakerConfig is cfg.Breaker with the stack's logger and listeners.
// The breaker gets an OnEvent listener only when someone needs every
// event (its own OnEvent, a full subscriber, or the Logger at Debug): a
// breaker with OnEvent reads the clock on every call. While only sampled
// subscribers listen, it gets an OnSample listener instead, which keeps
// its fast path; its own OnSample, if any, is called first.
func (e *executor) breakerConfig(cfg Config) breaker.Config {
	b := *cfg.Breaker
	if b.Logger == nil {
		b.Logger = cfg.Logger
	}
	switch {
	case b.OnEvent != nil || e.stack.listening() == listenFull ||
		(cfg.Logger != nil && cfg.Logger.Enabled(context.Background(), slog.LevelDebug)):
		b.OnEvent = e.listener(b.OnEvent, cfg.Logger)
	case e.stack.listening() == listenSampled:
		// No logger: the breaker logs its circuit changes itself, and
		// request events are logged at Debug, which is off.
		b.OnSample = e.listener(b.OnSample, nil)
	}
	return b
}

func (e *executor) configError(layer string, err error) error {
	return fmt.Errorf("%w: executor %q: %s: %w", ErrInvalid, e.name, layer, err)
}

// listener returns the listener a layer of this executor reports to: it
// sets the executor's name and the call's operation, calls the layer's own
// listener, if any, logs the event to logger (circuit changes excepted:
// the breaker logs those itself, with its statistics), and then calls
// every subscriber of the stack.
func (e *executor) listener(own bulwark.Listener, logger *slog.Logger) bulwark.Listener {
	return func(ev bulwark.Event) { e.report(ev, own, logger) }
}

// report is what listener's listeners do with an event.
func (e *executor) report(ev bulwark.Event, own bulwark.Listener, logger *slog.Logger) {
	ev.Executor = e.name
	if ev.Operation == "" && ev.Context != nil {
		// The call found may be one that this event's call was made
		// inside of (a Middleware call in a Do's function): its
		// Operation is not this call's.
		if c := callFrom(ev.Context); c != nil && c.exec == e {
			ev.Operation = c.opts.operation()
		}
	}
	if ev.Kind == bulwark.IdempotencyReplayed {
		e.replays.Add(1)
	}
	if own != nil {
		own(ev)
	}
	if logger != nil && !circuitEvent(ev.Kind) {
		bulwark.LogEvent(logger, ev)
	}
	e.stack.publish(ev)
}

func circuitEvent(k bulwark.EventKind) bool {
	switch k {
	case bulwark.CircuitOpened, bulwark.CircuitHalfOpen, bulwark.CircuitClosed:
		return true
	}
	return false
}

// chain returns the Func that runs a call of result type T through the
// layers, built on first use and shared by every later call.
func chain[T any](l *layers) bulwark.Func[T] {
	t := reflect.TypeFor[T]()
	if fs := l.chains.Load(); fs != nil {
		for _, f := range *fs {
			if f.t == t {
				return f.fn.(bulwark.Func[T])
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var next []typedFunc
	if fs := l.chains.Load(); fs != nil {
		for _, f := range *fs {
			if f.t == t {
				return f.fn.(bulwark.Func[T])
			}
		}
		next = append(next, *fs...)
	}
	fn := build[T](l, idempotencyKey, fallbackKey, invoke[T])
	next = append(next, typedFunc{t: t, fn: fn})
	l.chains.Store(&next)
	return fn
}

// invoke is the innermost Func of every chain: it runs the call's own
// function, counting the attempt. The function runs without the per-call
// values attached for the call (see callvalue.Hide): they applied to this
// call, not to the calls the function makes.
func invoke[T any](ctx context.Context) (T, error) {
	c := callFrom(ctx)
	c.attempts.Add(1)
	return c.fn.(bulwark.Func[T])(callvalue.Hide(ctx))
}

// idempotencyKey is the idempotency layer's KeyFunc for Do and Execute:
// the key of the call's options.
func idempotencyKey(ctx context.Context) (key, fingerprint string, ok bool) {
	if c := callFrom(ctx); c != nil {
		return c.opts.idempotencyKey(ctx)
	}
	return idempotency.AttachedKey(ctx)
}

// fallbackKey is the fallback layer's key function for Do and Execute: the
// fallback key of the call's options.
func fallbackKey(ctx context.Context) (string, bool) {
	if c := callFrom(ctx); c != nil {
		return c.opts.fallbackKeyOf(ctx)
	}
	return cache.AttachedKey[string](ctx)
}

// stats returns the executor's statistics.
func (e *executor) stats() Stats {
	l := e.layers.Load()
	st := Stats{Replays: e.replays.Load()}
	if l.breaker != nil {
		bs := l.breaker.Stats()
		st.Breaker = &bs
	}
	if l.cache != nil {
		cs := l.cache.Stats()
		st.Fallback = &cs
	}
	if l.bulkhead != nil {
		bs := l.bulkhead.Stats()
		st.Bulkhead = &bs
	}
	if l.limiter != nil {
		rs := l.limiter.Stats()
		st.RateLimit = &rs
	}
	if bs, ok := l.retry.Budget(); ok {
		st.RetryBudget = &bs
	}
	return st
}
