package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
)

// call is the context of one call through the stack. It carries the call's
// Report, options and function, so that a call costs one allocation for
// all three.
type call struct {
	context.Context
	report   bulwark.Report
	attempts atomic.Int32
	opts     callOptions
	fn       any // bulwark.Func[T]
}

type callKey struct{}

func (c *call) Value(key any) any {
	switch key.(type) {
	case bulwark.ReportKey:
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
	return runCall(c, l, run)
}

// Middleware returns a middleware that runs every call of the wrapped
// function through executor's layers, as [Do] does, with opts. A key that
// differs per call can come from the context: an idempotency key attached
// with idempotency.WithKey, a fallback key attached with cache.WithKey,
// and cache.SkipFallback are honoured when opts do not set them.
//
// Middleware is the form for hot paths: it finds the executor and builds
// the layers around the wrapped function once (again after the executor is
// configured anew), and a call then costs only what its layers cost, with
// no context or allocation of the pipeline's own. An invalid option or
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
			return b.run(o.withAttempts(ctx))
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
	run := build[T](l, o.idempotencyKey, o.fallbackKeyOf, next)
	if l.idem != nil || undo != nil {
		chained := run
		run = func(ctx context.Context) (T, error) {
			st, ok := newStep(ctx, ctx, l, o.idempotencyKey, undo, undoName)
			if !ok {
				return chained(ctx)
			}
			outer := bulwark.ReportFrom(ctx)
			rctx, report := bulwark.WithReport(ctx) // to see whether it replayed
			defer passOn(report, outer)
			return st.run(func() (T, error) { return chained(rctx) }, report)
		}
	}
	return &boundChain[T]{exec: e, layers: l, run: run}, nil
}

// passOn records what r recorded in outer, the caller's Report (which may
// be nil).
func passOn(r, outer *bulwark.Report) {
	if outer == nil {
		return
	}
	if n := r.Attempts(); n > 0 {
		outer.SetAttempts(n)
	}
	if r.FromCache() {
		outer.SetFromCache()
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
	outer.Abandon(r.TakeAbandoned(0))
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
	c := &call{Context: ctx, fn: fn}
	if len(opts) > 0 {
		if err := c.opts.apply(executor, opts); err != nil {
			return nil, nil, nil, err
		}
		if _, _, err := undoOf[T](executor, &c.opts); err != nil {
			return nil, nil, nil, err
		}
		c.Context = c.opts.withAttempts(ctx)
	}
	l := e.layers.Load()
	return c, l, chain[T](l), nil
}
