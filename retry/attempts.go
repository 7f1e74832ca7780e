package retry

import (
	"context"
	"fmt"

	"github.com/bulwark-go/bulwark/internal/callvalue"
)

// attemptsKey is the context key of WithMaxAttempts.
type attemptsKey struct{}

// PerCallKey marks the number of attempts as a value for one call (see
// internal/callvalue): the function of a call does not see it.
func (attemptsKey) PerCallKey() {}

// attemptsCtx carries the number of attempts of one call. It answers
// attemptsKey with itself, so that reading n back boxes nothing.
type attemptsCtx struct {
	context.Context
	n int
	// inner is the context a call made with this very context runs its
	// function with (the common case of retry.Do(WithMaxAttempts(...))),
	// made with it so that it costs no allocation of its own.
	inner unattempted
}

func (c *attemptsCtx) Value(key any) any {
	switch key.(type) {
	case attemptsKey, callvalue.Marker:
		return c
	}
	return c.Context.Value(key)
}

// unattempted is the context a retry layer runs its function with when
// the call carries WithMaxAttempts: the number of attempts is the call's,
// not that of the calls the function makes.
type unattempted struct {
	context.Context
}

func (c *unattempted) Value(key any) any {
	if _, ok := key.(attemptsKey); ok {
		return nil
	}
	return c.Context.Value(key)
}

// consume returns the number of attempts WithMaxAttempts attached to ctx,
// whether there is one, and the context to run the call's function with:
// ctx without that number (one allocation, none when ctx is the context
// WithMaxAttempts returned), or ctx itself without one.
func consume(ctx context.Context) (n int, ok bool, fnCtx context.Context) {
	c, ok := ctx.Value(attemptsKey{}).(*attemptsCtx)
	switch {
	case !ok:
		return 0, false, ctx
	case ctx == context.Context(c):
		return c.n, true, &c.inner
	}
	return c.n, true, &unattempted{Context: ctx}
}

// WithMaxAttempts returns a copy of ctx with which [Do] (and every
// Retrier, whatever its Config) makes at most n attempts for this one
// call, the first included: 1 turns retries off, a larger n allows more or
// fewer than Config.MaxAttempts. It is the per-call knob behind the
// pipeline's NoRetry and Attempts call options and bulwarkhttp's
// per-request ones. A later WithMaxAttempts on a derived context wins.
//
// It applies to this call only, not to calls made inside it: the first
// retry layer that runs the call takes it, and runs the call's function
// with a context without it (as does a pipeline call, whatever its
// layers), so a call the function makes is retried as its own retry
// layer says, not as many times as the outer call's.
//
// An n below 1 is refused by Do: it gives up
// after the first failed attempt with an [*Error] whose Reason wraps
// [ErrInvalidConfig] and names WithMaxAttempts (callers that validate
// first, such as the pipeline, report it before anything runs).
// WithMaxAttempts costs one allocation, like context.WithValue (and a
// call through a context derived from the one it returned, one more, for
// its function's context), and is safe for concurrent use.
func WithMaxAttempts(ctx context.Context, n int) context.Context {
	c := &attemptsCtx{Context: ctx, n: n}
	c.inner.Context = c
	return c
}

// MaxAttemptsFrom returns the number of attempts [WithMaxAttempts]
// attached to ctx for the call about to be made with it, and whether
// there is one. Inside the function of a call made with such a context,
// it reports none (see WithMaxAttempts). It does not allocate.
func MaxAttemptsFrom(ctx context.Context) (int, bool) {
	if c, ok := ctx.Value(attemptsKey{}).(*attemptsCtx); ok {
		return c.n, true
	}
	return 0, false
}

// maxAttemptsOf returns the most attempts a call may make: n, the
// number WithMaxAttempts attached to it (if ok), or else p's. An invalid
// per-call value is an error wrapping ErrInvalidConfig.
func (p *policy) maxAttemptsOf(n int, ok bool) (int, error) {
	if !ok {
		return p.maxAttempts, nil
	}
	if n < 1 {
		return 0, fmt.Errorf("%w: WithMaxAttempts is %d, must be at least 1 (1 turns retries off)", ErrInvalidConfig, n)
	}
	return n, nil
}
