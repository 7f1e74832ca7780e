package pipeline

import (
	"context"
	"log/slog"
	"reflect"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// layerBuilder builds one layer of l from l.cfg. prev is the executor's
// current layers (never nil: an executor starts with empty ones); rewire
// is set when only the stack's listeners changed, and every layer then
// keeps its state.
type layerBuilder func(e *executor, l, prev *layers, rewire bool) error

// buildLocked builds the layers of cfg, keeping the state of the current
// ones where it can, and publishes them. cfg was validated.
func (e *executor) buildLocked(cfg Config, rewire bool) error {
	prev := e.layers.Load()
	l := &layers{cfg: cfg}
	builders := [...]layerBuilder{ // outermost first
		(*executor).buildIdempotency,
		(*executor).buildFallback,
		(*executor).buildBreaker,
		(*executor).buildRetry,
		(*executor).buildBulkhead,
		(*executor).buildRateLimit,
		(*executor).buildAttemptTimeout,
		(*executor).buildRollback,
	}
	for _, build := range builders {
		if err := build(e, l, prev, rewire); err != nil {
			return err
		}
	}
	e.layers.Store(l)
	return nil
}

// buildIdempotency makes the Manager, over the configured Store or the
// executor's in-memory one. Its listener is always installed (its events
// are rare), so a rewire keeps it. A Configure that keeps the store and
// the lease keeps the calls in flight (idempotency.Manager.Reconfigure):
// with a new table, a duplicate of a call running got ErrInProgress
// instead of waiting for it.
func (e *executor) buildIdempotency(l, prev *layers, rewire bool) error {
	if rewire && prev.idem != nil {
		l.idem, l.forgetName, l.executor, l.forget = prev.idem, prev.forgetName, prev.executor, prev.forget
		return nil
	}
	c := l.cfg.Idempotency
	if c == nil {
		return nil
	}
	store := c.Store
	if store == nil {
		if e.memStore == nil {
			ms, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
			if err != nil {
				return e.configError("Idempotency", err)
			}
			e.memStore = ms
		}
		store = e.memStore
	}
	icfg := c.Config
	icfg.OnEvent = e.listener(icfg.OnEvent, l.cfg.Logger)
	m, err := prev.idem.Reconfigure(store, icfg)
	if err != nil {
		return e.configError("Idempotency", err)
	}
	l.idem = m
	l.forgetName = "forget " + e.name + " idempotency key"
	l.executor, l.forget = e.name, e.stack.forget
	return nil
}

// buildFallback makes the fallback's cache, or keeps the current one if
// its configuration did not change.
func (e *executor) buildFallback(l, prev *layers, _ bool) error {
	c := l.cfg.Fallback
	if c == nil {
		return nil
	}
	l.fallbackCfg = c.FallbackConfig
	l.fallbackCfg.OnEvent = e.optionalListener(c.OnEvent, l.cfg.Logger, slog.LevelDebug)
	maxAge := c.MaxAge
	if maxAge == 0 {
		maxAge = cache.DefaultMaxAge
	}
	// Entries older than MaxAge could never be served: let the cache
	// drop them.
	l.cacheCfg = cache.Config{MaxEntries: c.MaxEntries, TTL: maxAge}
	if prev.cache != nil && prev.cacheCfg == l.cacheCfg {
		l.cache = prev.cache
		return nil
	}
	cc, err := cache.New[string, any](l.cacheCfg)
	if err != nil {
		return e.configError("Fallback", err)
	}
	l.cache = cc
	return nil
}

// buildBreaker configures the executor's breaker in the stack's Group,
// which keeps its state.
func (e *executor) buildBreaker(l, _ *layers, _ bool) error {
	if l.cfg.Breaker == nil {
		return nil
	}
	if err := e.stack.breakers.Configure(e.name, e.breakerConfig(l.cfg)); err != nil {
		return e.configError("Breaker", err)
	}
	l.breaker = e.stack.breakers.Get(e.name)
	return nil
}

// buildRetry makes the executor's Retrier. Its listener is always
// installed (events come only with retries, which wait anyway), so a
// rewire keeps the Retrier and its Budget's counts; a Configure keeps the
// counts while the Budget is unchanged (retry.Retrier.Reconfigure).
func (e *executor) buildRetry(l, prev *layers, rewire bool) error {
	c := l.cfg.Retry
	if c == nil {
		return nil
	}
	l.maxPause = c.MaxRetryAfter
	if l.maxPause == 0 {
		l.maxPause = retry.DefaultMaxRetryAfter
	}
	if rewire && prev.retry != nil {
		l.retry = prev.retry
		return nil
	}
	rcfg := *c
	rcfg.Name = e.name
	rcfg.OnEvent = e.listener(rcfg.OnEvent, l.cfg.Logger)
	r, err := prev.retry.Reconfigure(rcfg)
	if err != nil {
		return e.configError("Retry", err)
	}
	l.retry = r
	return nil
}

// buildBulkhead makes the executor's bulkhead. A rewire keeps it (its
// listener, called on rejections only, is always installed), and so does
// a Configure that leaves its limits as they were: a new bulkhead would
// not count the calls in flight on the old one, and would let twice
// MaxConcurrent run. Its listener reads the executor's current OnEvent
// and Logger at each event, so a kept bulkhead reports to the new ones.
func (e *executor) buildBulkhead(l, prev *layers, rewire bool) error {
	c := l.cfg.Bulkhead
	if c == nil {
		return nil
	}
	if prev.bulkhead != nil && (rewire || sameBulkhead(prev.cfg.Bulkhead, c)) {
		l.bulkhead = prev.bulkhead
		return nil
	}
	bcfg := *c
	bcfg.OnEvent = e.liveListener(func(cfg Config) bulwark.Listener {
		if cfg.Bulkhead == nil {
			return nil
		}
		return cfg.Bulkhead.OnEvent
	})
	b, err := bulkhead.New(e.name, bcfg)
	if err != nil {
		return e.configError("Bulkhead", err)
	}
	l.bulkhead = b
	return nil
}

// buildRateLimit makes the executor's rate limiter. A rewire keeps it
// (its listener, called on rejections and pauses only, is always
// installed), and so does a Configure that leaves its rate, burst,
// MaxWait and Backend as they were: a new local token bucket would start
// full, and let a second burst through. Like the bulkhead's, its listener
// reads the executor's current OnEvent and Logger.
func (e *executor) buildRateLimit(l, prev *layers, rewire bool) error {
	c := l.cfg.RateLimit
	if c == nil {
		return nil
	}
	if l.maxPause == 0 {
		l.maxPause = retry.DefaultMaxRetryAfter
	}
	if prev.limiter != nil && (rewire || sameRateLimit(prev.cfg.RateLimit, c)) {
		l.limiter = prev.limiter
		return nil
	}
	rcfg := *c
	rcfg.OnEvent = e.liveListener(func(cfg Config) bulwark.Listener {
		if cfg.RateLimit == nil {
			return nil
		}
		return cfg.RateLimit.OnEvent
	})
	lim, err := ratelimit.New(e.name, rcfg)
	if err != nil {
		return e.configError("RateLimit", err)
	}
	l.limiter = lim
	return nil
}

// liveListener is the listener of a layer kept across a Configure (the
// bulkhead, the rate limiter): at each event it reports to the own
// listener (picked from the executor's current configuration by own) and
// the Logger of that configuration.
func (e *executor) liveListener(own func(Config) bulwark.Listener) bulwark.Listener {
	return func(ev bulwark.Event) {
		cfg := e.layers.Load().cfg
		e.report(ev, own(cfg), cfg.Logger)
	}
}

// sameBulkhead reports whether a bulkhead configured by a can serve b:
// the same limits (the listener does not matter: see liveListener).
func sameBulkhead(a, b *bulkhead.Config) bool {
	return a != nil && a.MaxConcurrent == b.MaxConcurrent && a.MaxWaiting == b.MaxWaiting && a.MaxWait == b.MaxWait
}

// sameRateLimit reports whether a rate limiter configured by a can serve
// b: the same rate, burst, MaxWait and Backend (the same value, when it
// can be compared; one that cannot never is the same).
func sameRateLimit(a, b *ratelimit.Config) bool {
	if a == nil || a.Rate != b.Rate || a.Burst != b.Burst || a.MaxWait != b.MaxWait {
		return false
	}
	if a.Backend == nil || b.Backend == nil {
		return a.Backend == nil && b.Backend == nil
	}
	return reflect.ValueOf(a.Backend).Comparable() && reflect.ValueOf(b.Backend).Comparable() && a.Backend == b.Backend
}

// buildAttemptTimeout reads the per-attempt timeout.
func (e *executor) buildAttemptTimeout(l, _ *layers, _ bool) error {
	if d := l.cfg.AttemptTimeout; d > 0 && d < forever {
		l.attemptTimeout = d
	}
	return nil
}

// buildRollback keeps the rollback configuration with the stack's
// listener.
func (e *executor) buildRollback(l, _ *layers, _ bool) error {
	c := l.cfg.Rollback
	if c == nil {
		return nil
	}
	rcfg := *c
	rcfg.OnEvent = e.optionalListener(rcfg.OnEvent, l.cfg.Logger, slog.LevelWarn)
	l.rollback = &rcfg
	return nil
}

// build assembles the layers of l, in the documented order, around inner:
// idempotency → fallback → breaker → retry → bulkhead → ratelimit →
// attempt timeout → rollback → inner. idemKey and fbKey give each call's
// idempotency and fallback keys. Each layer that is off adds nothing.
func build[T any](l *layers, idemKey idempotency.KeyFunc, fbKey func(context.Context) (string, bool), inner bulwark.Func[T]) bulwark.Func[T] {
	fn := withRollback(l, inner)
	fn = withAttemptTimeout(l, fn)
	fn = withRateLimit(l, fn)
	fn = withBulkhead(l, fn)
	fn = withRetry(l, fn)
	fn = withBreaker(l, fn)
	fn = withFallback(l, fbKey, fn)
	return withIdempotency(l, idemKey, fn)
}

func withIdempotency[T any](l *layers, key idempotency.KeyFunc, next bulwark.Func[T]) bulwark.Func[T] {
	if l.idem == nil {
		return next
	}
	return idempotency.Middleware[T](l.idem, key)(next)
}

func withFallback[T any](l *layers, key func(context.Context) (string, bool), next bulwark.Func[T]) bulwark.Func[T] {
	if l.cache == nil {
		return next
	}
	return cache.FallbackFunc[T](l.cache, key, l.fallbackCfg)(next)
}

func withBreaker[T any](l *layers, next bulwark.Func[T]) bulwark.Func[T] {
	if l.breaker == nil {
		return next
	}
	return breaker.Middleware[T](l.breaker)(next)
}

func withRetry[T any](l *layers, next bulwark.Func[T]) bulwark.Func[T] {
	if l.retry == nil {
		return next
	}
	return retry.Middleware[T](l.retry)(next)
}

func withBulkhead[T any](l *layers, next bulwark.Func[T]) bulwark.Func[T] {
	if l.bulkhead == nil {
		return next
	}
	return bulkhead.Middleware[T](l.bulkhead)(next)
}

// withRateLimit waits for the limiter before each attempt and, when an
// attempt fails with an error that asks for a wait (a Retry-After, see
// retry.WaitOf), pauses the limiter for that long, at most maxPause, so
// that every caller of the executor backs off, not only this one.
func withRateLimit[T any](l *layers, next bulwark.Func[T]) bulwark.Func[T] {
	lim := l.limiter
	if lim == nil {
		return next
	}
	maxPause := l.maxPause
	return func(ctx context.Context) (T, error) {
		if err := lim.Wait(ctx); err != nil {
			var zero T
			return zero, err
		}
		v, err := next(ctx)
		if err != nil {
			if d, ok := retry.WaitOf(err); ok {
				lim.PauseFor(min(d, maxPause))
			}
		}
		return v, err
	}
}

func withAttemptTimeout[T any](l *layers, next bulwark.Func[T]) bulwark.Func[T] {
	d := l.attemptTimeout
	if d == 0 {
		return next
	}
	return func(ctx context.Context) (T, error) {
		actx, cancel := context.WithTimeoutCause(ctx, d, ErrAttemptTimeout)
		defer cancel()
		v, err := next(actx)
		if err != nil && ctx.Err() == nil && context.Cause(actx) == ErrAttemptTimeout {
			err = &attemptTimeoutError{timeout: d, err: err}
		}
		return v, err
	}
}

func withRollback[T any](l *layers, next bulwark.Func[T]) bulwark.Func[T] {
	if l.rollback == nil {
		return next
	}
	return rollback.Middleware[T](rollback.WithConfig(*l.rollback))(next)
}
