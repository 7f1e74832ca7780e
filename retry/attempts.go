package retry

import (
	"context"
	"fmt"
)

// attemptsKey is the context key of WithMaxAttempts.
type attemptsKey struct{}

// WithMaxAttempts returns a copy of ctx with which [Do] (and every
// Retrier, whatever its Config) makes at most n attempts for this one
// call, the first included: 1 turns retries off, a larger n allows more or
// fewer than Config.MaxAttempts. It is the per-call knob behind the
// pipeline's NoRetry and Attempts call options and bulwarkhttp's
// per-request ones. A later WithMaxAttempts on a derived context wins.
//
// Do reads it only after an attempt failed, so a call that succeeds at
// once pays nothing for it. An n below 1 is refused there: Do gives up
// after the first failed attempt with an [*Error] whose Reason wraps
// [ErrInvalidConfig] and names WithMaxAttempts (callers that validate
// first, such as the pipeline, report it before anything runs).
// WithMaxAttempts costs one allocation, like context.WithValue, and is
// safe for concurrent use.
func WithMaxAttempts(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptsKey{}, n)
}

// MaxAttemptsFrom returns the number of attempts [WithMaxAttempts]
// attached to ctx, and whether there is one. It does not allocate.
func MaxAttemptsFrom(ctx context.Context) (int, bool) {
	n, ok := ctx.Value(attemptsKey{}).(int)
	return n, ok
}

// maxAttemptsOf returns the most attempts the call made with ctx may
// make: WithMaxAttempts's, or else p's. An invalid per-call value is an
// error wrapping ErrInvalidConfig.
func (p *policy) maxAttemptsOf(ctx context.Context) (int, error) {
	n, ok := MaxAttemptsFrom(ctx)
	if !ok {
		return p.maxAttempts, nil
	}
	if n < 1 {
		return 0, fmt.Errorf("%w: WithMaxAttempts is %d, must be at least 1 (1 turns retries off)", ErrInvalidConfig, n)
	}
	return n, nil
}
