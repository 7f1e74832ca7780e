package bench

import (
	"context"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/bulwark-go/bulwark/retry"
)

// Retry rows: at most 3 attempts, stopping when the caller's context is
// done (backoff.WithContext, failsafe's WithContext). backoff's BackOff
// values hold per-call state, so a call site makes a fresh one per call, as
// the benchmarks do; bulwark's Retrier and failsafe's executor are made
// once and shared.

// BenchmarkRetryFirstTry is a call that succeeds at once, with a production
// backoff configuration (exponential from 500ms, factor 1.5, jitter 0.5,
// capped at 60s): the retry layer's hot path.
func BenchmarkRetryFirstTry(b *testing.B) { bench(b, retryFirstTry) }

// BenchmarkRetryFailTwice is a call that fails twice and succeeds at the
// third attempt, with zero waits: the cost of the retry loop itself.
func BenchmarkRetryFailTwice(b *testing.B) { bench(b, retryFailTwice) }

var (
	retryFirstTry = row{name: "RetryFirstTry", impls: []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			r := newRetrier(tb, retry.Config{})
			u := newUp()
			return func(ctx context.Context) error {
				return checkOK(retry.Do(ctx, r, u.call))
			}
		}},
		{"backoff", func(testing.TB) func(context.Context) error {
			u := newUp()
			return func(ctx context.Context) error {
				return checkOK(backoff.RetryWithData(func() (int, error) { return u.call(ctx) }, exponentialBackOff(ctx)))
			}
		}},
		{"failsafe", func(testing.TB) func(context.Context) error {
			ex := failsafe.With[int](exponentialRetryPolicy())
			u := newUp()
			return func(ctx context.Context) error {
				return checkOK(ex.WithContext(ctx).Get(func() (int, error) { return u.call(ctx) }))
			}
		}},
	}}

	retryFailTwice = row{name: "RetryFailTwice", impls: []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			r := newRetrier(tb, retry.Config{NoWait: true})
			f := new(flaky)
			return func(ctx context.Context) error {
				before := f.n
				v, err := retry.Do(ctx, r, f.call)
				return f.check(before, v, err)
			}
		}},
		{"backoff", func(testing.TB) func(context.Context) error {
			f := new(flaky)
			return func(ctx context.Context) error {
				before := f.n
				v, err := backoff.RetryWithData(func() (int, error) { return f.call(ctx) }, zeroBackOff(ctx))
				return f.check(before, v, err)
			}
		}},
		{"failsafe", func(testing.TB) func(context.Context) error {
			ex := failsafe.With[int](zeroRetryPolicy())
			f := new(flaky)
			return func(ctx context.Context) error {
				before := f.n
				v, err := ex.WithContext(ctx).Get(func() (int, error) { return f.call(ctx) })
				return f.check(before, v, err)
			}
		}},
	}}
)

// newRetrier returns a bulwark Retrier.
func newRetrier(tb testing.TB, cfg retry.Config) *retry.Retrier {
	tb.Helper()
	r, err := retry.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// exponentialBackOff is one call's backoff/v4 policy with bulwark's retry
// defaults: 3 attempts, exponential waits (backoff's own defaults, which
// bulwark's are), no elapsed-time limit, bound to ctx.
func exponentialBackOff(ctx context.Context) backoff.BackOffContext {
	return backoff.WithContext(backoff.WithMaxRetries(
		backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(0)), maxAttempts-1), ctx)
}

// zeroBackOff is one call's backoff/v4 policy with 3 attempts and no waits,
// bound to ctx.
func zeroBackOff(ctx context.Context) backoff.BackOffContext {
	return backoff.WithContext(backoff.WithMaxRetries(&backoff.ZeroBackOff{}, maxAttempts-1), ctx)
}

// exponentialRetryPolicy is failsafe-go's retry policy with bulwark's retry
// defaults.
func exponentialRetryPolicy() retrypolicy.RetryPolicy[int] {
	return retrypolicy.NewBuilder[int]().
		WithMaxAttempts(maxAttempts).
		WithBackoffFactor(500*time.Millisecond, 60*time.Second, 1.5).
		WithJitterFactor(0.5).
		Build()
}

// zeroRetryPolicy is failsafe-go's retry policy with 3 attempts and no
// waits (its default delay is zero).
func zeroRetryPolicy() retrypolicy.RetryPolicy[int] {
	return retrypolicy.NewBuilder[int]().WithMaxAttempts(maxAttempts).Build()
}
