package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/rollback"
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
// retry → rollback → fn; opts give the call's idempotency key, operation
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
	run := build[T](l, o.idempotencyKey, o.fallbackKeyOf, next)
	if l.idem != nil {
		chained := run
		run = func(ctx context.Context) (T, error) {
			key, ok := forgettableKey(ctx, l, o.idempotencyKey)
			if !ok {
				return chained(ctx)
			}
			outer := bulwark.ReportFrom(ctx)
			rctx, report := bulwark.WithReport(ctx) // to see whether it replayed
			defer passOn(report, outer)
			return forgettable(ctx, l, key, func() (T, error) { return chained(rctx) }, report)
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
		c.Context = c.opts.withAttempts(ctx)
	}
	l := e.layers.Load()
	return c, l, chain[T](l), nil
}

// runCall runs c through run. A call with an idempotency key made inside
// an enclosing rollback scope (a workflow run with rollback.Do) registers
// with that scope, before anything runs, a compensation that forgets the
// key: if the workflow fails later, the call's own compensations (handed
// to the scope when it succeeded, so registered after this one) undo its
// effects first, and then its stored result is deleted, so that a rerun
// executes the step again instead of replaying a result whose effects no
// longer exist. Only a call that executed and recorded its result forgets
// its key; a replayed or failed one, or one answered from the fallback
// cache (which records nothing), does not.
func runCall[T any](c *call, l *layers, run bulwark.Func[T]) (T, error) {
	key, ok := forgettableKey(c, l, idempotencyKey)
	if !ok {
		return run(c)
	}
	return forgettable(c.Context, l, key, func() (T, error) { return run(c) }, &c.report)
}

// forgettableKey returns the idempotency key of a call made with ctx, if
// the call has one and runs inside an open rollback scope, so that its key
// must be forgotten if that scope rolls back.
func forgettableKey(ctx context.Context, l *layers, keyOf idempotency.KeyFunc) (string, bool) {
	if l.idem == nil {
		return "", false
	}
	key, _, ok := keyOf(ctx)
	return key, ok && key != "" && rollback.InScope(ctx)
}

// forgettable registers with the rollback scope of scope the forgetting
// of key (see runCall), then runs the call; the forgetting is armed only
// if the call succeeded and its result was recorded: neither replayed nor
// answered from the fallback cache (report says which).
func forgettable[T any](scope context.Context, l *layers, key string, call func() (T, error), report *bulwark.Report) (T, error) {
	f := &forgetter{m: l.idem, key: key}
	if rollback.OnRollback(scope, l.forgetName, f.forget) != nil {
		return call() // the scope ended meanwhile
	}
	v, err := call()
	if err == nil && !report.Replayed() && !report.FromCache() {
		f.armed.Store(true)
	}
	return v, err
}

// forgetter deletes an idempotency key's stored result when a workflow
// rolls back, if the call it belongs to executed.
type forgetter struct {
	m     *idempotency.Manager
	key   string
	armed atomic.Bool
}

func (f *forgetter) forget(ctx context.Context) error {
	if !f.armed.Load() {
		return nil
	}
	_, err := f.m.Forget(ctx, f.key)
	return err
}
