package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"

	"github.com/bulwark-go/bulwark/breaker"
)

// Breaker rows: one call through a circuit breaker, without a request
// timeout (gobreaker has none) and without listeners. Every breaker opens
// after 5 consecutive failures, probes after its reset timeout and closes
// after 2 successful probes.

// BenchmarkBreakerClosed is a successful call through a CLOSED breaker:
// the hot path of every breaker.
func BenchmarkBreakerClosed(b *testing.B) { bench(b, breakerClosed) }

// BenchmarkBreakerClosedParallel is the same with one breaker shared by
// every goroutine.
func BenchmarkBreakerClosedParallel(b *testing.B) { bench(b, breakerClosedParallel) }

// BenchmarkBreakerOpen is a call refused by an OPEN breaker, which the
// service never sees.
func BenchmarkBreakerOpen(b *testing.B) { bench(b, breakerOpen) }

// BenchmarkBreakerOpenParallel is the same with one breaker shared by
// every goroutine.
func BenchmarkBreakerOpenParallel(b *testing.B) { bench(b, breakerOpenParallel) }

// BenchmarkBreakerClosedNoCapture and BenchmarkBreakerClosedMiddleware are
// reference rows, bulwark only: the closed path in the two forms that need
// no function value per call, a function that captures nothing and a
// Middleware built once over the service. What separates them from
// BreakerClosed's bulwark column is the per-call function value that
// breaker.Do moves to the heap (see docs/performance.md).
func BenchmarkBreakerClosedNoCapture(b *testing.B) { bench(b, breakerClosedNoCapture) }

func BenchmarkBreakerClosedMiddleware(b *testing.B) { bench(b, breakerClosedMiddleware) }

var (
	breakerClosedNoCapture = row{name: "BreakerClosedNoCapture", impls: []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			br := newBreaker(tb, resetTimeout, -1)
			return func(ctx context.Context) error {
				return checkOK(breaker.Do(ctx, br, answer))
			}
		}},
	}}
	breakerClosedMiddleware = row{name: "BreakerClosedMiddleware", impls: []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			call := breaker.Middleware[int](newBreaker(tb, resetTimeout, -1))(newUp().call)
			return func(ctx context.Context) error { return checkOK(call(ctx)) }
		}},
	}}

	breakerClosedImpls = []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			br := newBreaker(tb, resetTimeout, -1)
			u := newUp()
			return func(ctx context.Context) error {
				return checkOK(breaker.Do(ctx, br, u.call))
			}
		}},
		{"gobreaker", func(testing.TB) func(context.Context) error {
			cb := newGobreaker(resetTimeout)
			u := newUp()
			return func(ctx context.Context) error {
				return checkOK(cb.Execute(func() (int, error) { return u.call(ctx) }))
			}
		}},
		{"failsafe", func(testing.TB) func(context.Context) error {
			ex := failsafe.With[int](newFailsafeBreaker(resetTimeout))
			u := newUp()
			return func(ctx context.Context) error {
				return checkOK(ex.Get(func() (int, error) { return u.call(ctx) }))
			}
		}},
	}
	breakerClosed         = row{name: "BreakerClosed", impls: breakerClosedImpls}
	breakerClosedParallel = row{name: "BreakerClosedParallel", parallel: true, impls: breakerClosedImpls}

	breakerOpenImpls = []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			br := newBreaker(tb, longReset, -1)
			s := tripped(tb, func(fn func(context.Context) (int, error)) error {
				_, err := breaker.Do(tb.Context(), br, fn)
				return err
			})
			return func(ctx context.Context) error {
				_, err := breaker.Do(ctx, br, s.call)
				return s.checkRejected(err, breaker.ErrOpen)
			}
		}},
		{"gobreaker", func(tb testing.TB) func(context.Context) error {
			cb := newGobreaker(longReset)
			s := tripped(tb, func(fn func(context.Context) (int, error)) error {
				_, err := cb.Execute(func() (int, error) { return fn(tb.Context()) })
				return err
			})
			return func(ctx context.Context) error {
				_, err := cb.Execute(func() (int, error) { return s.call(ctx) })
				return s.checkRejected(err, gobreaker.ErrOpenState)
			}
		}},
		{"failsafe", func(tb testing.TB) func(context.Context) error {
			ex := failsafe.With[int](newFailsafeBreaker(longReset))
			s := tripped(tb, func(fn func(context.Context) (int, error)) error {
				_, err := ex.Get(func() (int, error) { return fn(tb.Context()) })
				return err
			})
			return func(ctx context.Context) error {
				_, err := ex.Get(func() (int, error) { return s.call(ctx) })
				return s.checkRejected(err, circuitbreaker.ErrOpen)
			}
		}},
	}
	breakerOpen         = row{name: "BreakerOpen", impls: breakerOpenImpls}
	breakerOpenParallel = row{name: "BreakerOpenParallel", parallel: true, impls: breakerOpenImpls}
)

// answer is the good answer from a function that captures nothing.
func answer(context.Context) (int, error) { return good, nil }

// newBreaker returns a bulwark breaker with the common thresholds.
func newBreaker(tb testing.TB, reset, requestTimeout time.Duration) *breaker.Breaker {
	tb.Helper()
	br, err := breaker.New("bench", breaker.Config{
		FailureThreshold: failureThreshold,
		SuccessThreshold: successThreshold,
		ResetTimeout:     reset,
		RequestTimeout:   requestTimeout,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return br
}

// newGobreaker returns a gobreaker with the common thresholds.
func newGobreaker(reset time.Duration) *gobreaker.CircuitBreaker[int] {
	return gobreaker.NewCircuitBreaker[int](gobreaker.Settings{
		Name:        "bench",
		MaxRequests: successThreshold,
		Timeout:     reset,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= failureThreshold
		},
	})
}

// newFailsafeBreaker returns a failsafe-go circuit breaker with the common
// thresholds.
func newFailsafeBreaker(reset time.Duration) circuitbreaker.CircuitBreaker[int] {
	return circuitbreaker.NewBuilder[int]().
		WithFailureThreshold(failureThreshold).
		WithSuccessThreshold(successThreshold).
		WithDelay(reset).
		Build()
}

// down is a service that fails and counts its calls; safe for concurrent
// use.
type down struct {
	calls   atomic.Int64
	tripped int64 // calls made to open the circuit
}

func (d *down) call(context.Context) (int, error) {
	d.calls.Add(1)
	return 0, errDown
}

// tripped opens a circuit by making failureThreshold failing calls through
// do, and returns the failing service.
func tripped(tb testing.TB, do func(fn func(context.Context) (int, error)) error) *down {
	tb.Helper()
	d := new(down)
	for range failureThreshold {
		if err := do(d.call); !errors.Is(err, errDown) {
			tb.Fatalf("tripping the circuit: got %v, want %v", err, errDown)
		}
	}
	d.tripped = d.calls.Load()
	return d
}

// checkRejected verifies that a call was refused with want and that the
// service did not see it.
func (d *down) checkRejected(err, want error) error {
	if !errors.Is(err, want) {
		return fmt.Errorf("got %v, want %v", err, want)
	}
	if n := d.calls.Load(); n != d.tripped {
		return fmt.Errorf("the service was called %d times after the circuit opened", n-d.tripped)
	}
	return nil
}
