package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/callvalue"
)

// call is the context of one call through the stack. It carries the call's
// Report, options and function, so that a call costs one allocation for
// all three.
type call struct {
	context.Context
	report   bulwark.Report
	attempts atomic.Int32
	opts     callOptions
	fn       any       // bulwark.Func[T]
	exec     *executor // the call's executor: its events only get its Operation
}

type callKey struct{}

func (c *call) Value(key any) any {
	switch key.(type) {
	case bulwark.ReportKey, callvalue.CallReport:
		return &c.report
	case callKey:
		return c
	}
	return c.Context.Value(key)
}

// callFrom returns the call that ctx belongs to, or nil.
func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// Execute runs fn for executor through the executor's layers and returns
// the outcome with what the layers did to it. The executor is made from
// the Stack's defaults on first use unless [Stack.Configure] gave it its
// own Config.
//
// The layers run in the fixed order idempotency → fallback → breaker →
// retry → bulkhead → ratelimit → attempt timeout → rollback → fn; opts give the call's idempotency key, operation
// name, fallback key, or skip the fallback. A nil Stack or fn, an empty
// executor name or an idempotency key that cannot be built is an error
// (wrapping [ErrInvalid] or idempotency.ErrInvalidKeyPart) and nothing
// runs. A panic in fn propagates after each layer has released what it
// holds.
//
// Per-call values (opts, and the keys and number of attempts attached to
// ctx for this call) apply to this call only: fn runs without them, so a
// call made inside fn is keyed and retried as its own options say. When
// the call's value came from a cache (Result.FromCache), the caller's
// bulwark.Report, if ctx carries one, is marked FromCache too, so that an
// enclosing call does not record or store it as a fresh result.
//
// Execute is safe for concurrent use. Its cost over fn is one allocation
// plus what the enabled layers cost; [Do] saves the two clock reads of
// Result.Duration.
func Execute[T any](ctx context.Context, s *Stack, executor string, fn bulwark.Func[T], opts ...CallOption) Result[T] {
	start := time.Now()
	c, l, run, err := prepare(ctx, s, executor, fn, opts)
	if err != nil {
		return Result[T]{Err: err, Duration: time.Since(start)}
	}
	v, err := runCall(c, l, run)
	c.passOnFromCache()
	return Result[T]{
		Value:      v,
		Err:        err,
		FromCache:  c.report.FromCache(),
		Replayed:   c.report.Replayed(),
		Rejected:   c.report.Rejected(),
		RolledBack: c.report.RolledBack(),
		Attempts:   int(c.attempts.Load()),
		Duration:   time.Since(start),
	}
}

// Do is [Execute] returning only the value and the error. It is the form
// to use on hot paths: it reads no clock of its own.
func Do[T any](ctx context.Context, s *Stack, executor string, fn bulwark.Func[T], opts ...CallOption) (T, error) {
	c, l, run, err := prepare(ctx, s, executor, fn, opts)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := runCall(c, l, run)
	c.passOnFromCache()
	return v, err
}

// passOnFromCache marks the caller's Report (if ctx had one) FromCache
// when the call's value came from a cache, as Middleware does: the
// caller's own result is then made of a cached value, and must not be
// recorded as an idempotent result, nor stored by a fallback as fresh. It
// also hands on the calls a layer abandoned while they still run
// (bulwark.Report.Abandon): their effect is part of the caller's, whose
// idempotency layer holds its key until they end.
func (c *call) passOnFromCache() {
	if c.report.FromCache() {
		bulwark.ReportFrom(c.Context).SetFromCache()
	}
	if wait := c.report.TakeAbandoned(0); wait != nil {
		outer := bulwark.ReportFrom(c.Context)
		handUp(outer, wait, callvalue.Enclosing(c.Context, outer))
	}
}

// handUp passes the wait of a call abandoned while it runs to outer; to
// the Report of an enclosing call without its value (callvalue.WithoutValue:
// that call's function did not return it).
func handUp(outer *bulwark.Report, wait func() (any, error), enclosing bool) {
	if outer == nil || wait == nil {
		return
	}
	if enclosing {
		wait = callvalue.WithoutValue(wait)
	}
	outer.Abandon(wait)
}

// Middleware returns a middleware that runs every call of the wrapped
// function through executor's layers, as [Do] does, with opts. A key that
// differs per call can come from the context: an idempotency key attached
// with idempotency.WithKey, a fallback key attached with cache.WithKey,
// and cache.SkipFallback are honoured when opts do not set them. As with
// Do, the per-call values apply to this call only: the wrapped function
// runs without them (see [Attempts]).
//
// Middleware is the form for hot paths: it finds the executor and builds
// the layers around the wrapped function once (again after the executor is
// configured anew), and a call then costs only what its layers cost, with
// no context or allocation of the pipeline's own (but one Report, when the
// call is made inside a Do or Execute call's function: the layers record
// this call's outcome there, and only FromCache is passed on to the
// enclosing call, which was not replayed or rejected because this call
// was; a Report attached with bulwark.WithReport by the caller gets all
// of it). An invalid option or
// executor name is reported by every call. The returned middleware, and
// the Funcs it builds, are safe for concurrent use.
func Middleware[T any](s *Stack, executor string, opts ...CallOption) bulwark.Middleware[T] {
	var o callOptions
	optErr := o.apply(executor, opts)
	return func(next bulwark.Func[T]) bulwark.Func[T] {
		var bound atomic.Pointer[boundChain[T]]
		return func(ctx context.Context) (T, error) {
			if ctx == nil {
				var zero T
				return zero, fmt.Errorf("%w: executor %q: nil context", ErrInvalid, executor)
			}
			b := bound.Load()
			if b == nil || b.exec.layers.Load() != b.layers {
				var err error
				if b, err = bind(s, executor, next, &o, optErr); err != nil {
					var zero T
					return zero, err
				}
				bound.Store(b)
			}
			if b.layers.retry != nil {
				ctx = o.withAttempts(ctx)
			}
			return b.run(ctx)
		}
	}
}

// boundChain is the chain a Middleware built around its function, valid
// while its executor keeps the same layers.
type boundChain[T any] struct {
	exec   *executor
	layers *layers
	run    bulwark.Func[T]
}

// bind builds a Middleware's chain around next for the executor's current
// layers. The call options are fixed, so the key functions read them from
// the closure instead of from a per-call context.
func bind[T any](s *Stack, executor string, next bulwark.Func[T], o *callOptions, optErr error) (*boundChain[T], error) {
	switch {
	case s == nil:
		return nil, fmt.Errorf("%w: nil Stack", ErrInvalid)
	case next == nil:
		return nil, fmt.Errorf("%w: executor %q: nil function", ErrInvalid, executor)
	case optErr != nil:
		return nil, optErr
	}
	e, err := s.executor(executor)
	if err != nil {
		return nil, err
	}
	l := e.layers.Load()
	undo, undoName, err := undoOf[T](executor, o)
	if err != nil {
		return nil, err
	}
	inner := func(ctx context.Context) (T, error) { return next(callvalue.Hide(ctx)) }
	chained := build[T](l, o.idempotencyKey, o.fallbackKeyOf, inner)
	run := func(ctx context.Context) (T, error) {
		outer := bulwark.ReportFrom(ctx)
		enclosing := callvalue.Enclosing(ctx, outer)
		if l.idem == nil && undo == nil && !enclosing {
			return chained(ctx) // the layers annotate the caller's Report
		}
		st, ok := newStep(ctx, ctx, l, o.idempotencyKey, undo, undoName)
		if !ok && !enclosing {
			return chained(ctx)
		}
		// A Report of the call's own: to see whether it replayed, and to
		// keep an enclosing call's Report from this call's outcome.
		rctx, report := bulwark.WithReport(ctx)
		defer passOn(report, outer, enclosing)
		if !ok {
			return chained(rctx)
		}
		return st.run(func() (T, error) { return chained(rctx) }, report)
	}
	return &boundChain[T]{exec: e, layers: l, run: run}, nil
}

// passOn records what r recorded in outer, the caller's Report (which may
// be nil). When outer is an enclosing call's (enclosing), only FromCache
// and the abandoned calls (bulwark.Report.Abandon) are passed on: that
// call ran its function, so it was not replayed, rejected or rolled back
// because a call inside it was, but its value is made of the cached one,
// and its effect includes what an abandoned call may still do.
func passOn(r, outer *bulwark.Report, enclosing bool) {
	if outer == nil {
		return
	}
	if r.FromCache() {
		outer.SetFromCache()
	}
	// A call abandoned while it runs may still take effect, as part of
	// the enclosing call's operation too: its idempotency layer holds the
	// key until it ends (without the inner value: see handUp).
	handUp(outer, r.TakeAbandoned(0), enclosing)
	if enclosing {
		return
	}
	if n := r.Attempts(); n > 0 {
		outer.SetAttempts(n)
	}
	if r.Replayed() {
		outer.SetReplayed()
	}
	if r.Rejected() {
		outer.SetRejected()
	}
	if r.RolledBack() {
		outer.SetRolledBack()
	}
}

// prepare makes the call's context and finds the layers and chain to run
// it with.
func prepare[T any](ctx context.Context, s *Stack, executor string, fn bulwark.Func[T], opts []CallOption) (*call, *layers, bulwark.Func[T], error) {
	if s == nil {
		return nil, nil, nil, fmt.Errorf("%w: nil Stack", ErrInvalid)
	}
	if ctx == nil {
		return nil, nil, nil, fmt.Errorf("%w: executor %q: nil context", ErrInvalid, executor)
	}
	if fn == nil {
		return nil, nil, nil, fmt.Errorf("%w: executor %q: nil function", ErrInvalid, executor)
	}
	e, err := s.executor(executor)
	if err != nil {
		return nil, nil, nil, err
	}
	c := &call{Context: ctx, fn: fn, exec: e}
	if len(opts) > 0 {
		if err := c.opts.apply(executor, opts); err != nil {
			return nil, nil, nil, err
		}
		if _, _, err := undoOf[T](executor, &c.opts); err != nil {
			return nil, nil, nil, err
		}
	}
	l := e.layers.Load()
	if l.retry != nil {
		c.Context = c.opts.withAttempts(ctx)
	}
	return c, l, chain[T](l), nil
}
