package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/fallback"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// Composition rows. Every library composes its layers in bulwark's order,
// outermost first: fallback, breaker (with the request timeout), retry,
// then the call. So the breaker counts one outcome per call, after the
// retries, and the timeout bounds the whole retry loop.
//
// gobreaker has no retry, fallback or timeout: its rows use backoff/v4 for
// the retry, context.WithTimeout for the timeout and a hand-written
// fallback (lastGood), the closest composition a gobreaker user would
// write. failsafe-go has no fallback that remembers results: its fallback
// policy serves from the same hand-written lastGood, and the call stores
// every good result in it.

// BenchmarkRetryBreaker is a call that succeeds at once through a breaker
// (no request timeout) around a retry with the production backoff.
func BenchmarkRetryBreaker(b *testing.B) { bench(b, retryBreaker) }

// BenchmarkRetryBreakerFailTwice is a call that fails twice and then
// succeeds, retried with zero waits inside a breaker, which sees one
// success.
func BenchmarkRetryBreakerFailTwice(b *testing.B) { bench(b, retryBreakerFailTwice) }

// BenchmarkStack is a call that succeeds at once through the full stack:
// fallback (stores the result), breaker with a 10s request timeout, retry
// with the production backoff.
func BenchmarkStack(b *testing.B) { bench(b, stack) }

// BenchmarkStackParallel is the same with one stack shared by every
// goroutine.
func BenchmarkStackParallel(b *testing.B) { bench(b, stackParallel) }

// BenchmarkStackOpenFallback is a call to a failing service through the
// full stack while the circuit is open: the breaker refuses it and the
// fallback answers with the last good value.
func BenchmarkStackOpenFallback(b *testing.B) { bench(b, stackOpenFallback) }

var (
	retryBreaker = row{name: "RetryBreaker", impls: []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			call := bulwark.Chain(
				breaker.Middleware[int](newBreaker(tb, resetTimeout, -1)),
				retry.Middleware[int](newRetrier(tb, retry.Config{})),
			)(newUp().call)
			return func(ctx context.Context) error { return checkOK(call(ctx)) }
		}},
		{"gobreaker", func(testing.TB) func(context.Context) error {
			cb := newGobreaker(resetTimeout)
			u := newUp()
			return func(ctx context.Context) error {
				return checkOK(cb.Execute(func() (int, error) {
					return backoff.RetryWithData(func() (int, error) { return u.call(ctx) }, exponentialBackOff(ctx))
				}))
			}
		}},
		{"failsafe", func(testing.TB) func(context.Context) error {
			ex := failsafe.With[int](newFailsafeBreaker(resetTimeout), exponentialRetryPolicy())
			u := newUp()
			return func(ctx context.Context) error {
				return checkOK(ex.WithContext(ctx).Get(func() (int, error) { return u.call(ctx) }))
			}
		}},
	}}

	retryBreakerFailTwice = row{name: "RetryBreakerFailTwice", impls: []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			f := new(flaky)
			call := bulwark.Chain(
				breaker.Middleware[int](newBreaker(tb, resetTimeout, -1)),
				retry.Middleware[int](newRetrier(tb, retry.Config{NoWait: true})),
			)(f.call)
			return func(ctx context.Context) error {
				before := f.n
				v, err := call(ctx)
				return f.check(before, v, err)
			}
		}},
		{"gobreaker", func(testing.TB) func(context.Context) error {
			cb := newGobreaker(resetTimeout)
			f := new(flaky)
			return func(ctx context.Context) error {
				before := f.n
				v, err := cb.Execute(func() (int, error) {
					return backoff.RetryWithData(func() (int, error) { return f.call(ctx) }, zeroBackOff(ctx))
				})
				return f.check(before, v, err)
			}
		}},
		{"failsafe", func(testing.TB) func(context.Context) error {
			ex := failsafe.With[int](newFailsafeBreaker(resetTimeout), zeroRetryPolicy())
			f := new(flaky)
			return func(ctx context.Context) error {
				before := f.n
				v, err := ex.WithContext(ctx).Get(func() (int, error) { return f.call(ctx) })
				return f.check(before, v, err)
			}
		}},
	}}

	// The pipeline rows run the same stack as the executor "bench" of a
	// pipeline.Stack, through pipeline.Middleware built once (the form for
	// hot paths, as the bulwark rows build their chain once): what a
	// pipeline user pays over hand-chaining the middlewares.
	stackImpls = []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			s := newBulwarkStack(tb, resetTimeout)
			call := s.mw(s.svc.call)
			return func(ctx context.Context) error { return s.svc.check(call(ctx)) }
		}},
		{"gobreaker", func(tb testing.TB) func(context.Context) error {
			s := newGobreakerStack(tb, resetTimeout)
			return func(ctx context.Context) error { return s.svc.check(s.do(ctx, s.svc.call)) }
		}},
		{"failsafe", func(tb testing.TB) func(context.Context) error {
			s := newFailsafeStack(tb, resetTimeout)
			return func(ctx context.Context) error { return s.svc.check(s.do(ctx, s.svc.call)) }
		}},
		{"pipeline", func(tb testing.TB) func(context.Context) error {
			st := newPipelineStack(tb, resetTimeout)
			svc := newService(tb)
			call := pipeline.Middleware[int](st, "bench", pipeline.FallbackKey(fallbackKey))(svc.call)
			return func(ctx context.Context) error { return svc.check(call(ctx)) }
		}},
	}
	stack         = row{name: "Stack", impls: stackImpls}
	stackParallel = row{name: "StackParallel", parallel: true, impls: stackImpls}

	stackOpenFallback = row{name: "StackOpenFallback", impls: []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			s := newBulwarkStack(tb, longReset)
			primeBulwark(tb, s)
			d := tripped(tb, func(fn func(context.Context) (int, error)) error {
				_, err := breaker.Do(tb.Context(), s.br, fn)
				return err
			})
			call := s.mw(d.call)
			return func(ctx context.Context) error { return d.checkServed(call(ctx)) }
		}},
		{"pipeline", func(tb testing.TB) func(context.Context) error {
			st := newPipelineStack(tb, longReset)
			svc := newService(tb)
			mw := pipeline.Middleware[int](st, "bench", pipeline.FallbackKey(fallbackKey))
			if err := svc.check(mw(svc.call)(tb.Context())); err != nil {
				tb.Fatal(err)
			}
			d := tripped(tb, func(fn func(context.Context) (int, error)) error {
				_, err := breaker.Do(tb.Context(), st.Breaker("bench"), fn)
				return err
			})
			call := mw(d.call)
			return func(ctx context.Context) error { return d.checkServed(call(ctx)) }
		}},
		{"gobreaker", func(tb testing.TB) func(context.Context) error {
			s := newGobreakerStack(tb, longReset)
			prime(tb, s.svc, s.do)
			d := tripped(tb, func(fn func(context.Context) (int, error)) error {
				_, err := s.cb.Execute(func() (int, error) { return fn(tb.Context()) })
				return err
			})
			return func(ctx context.Context) error { return d.checkServed(s.do(ctx, d.call)) }
		}},
		{"failsafe", func(tb testing.TB) func(context.Context) error {
			s := newFailsafeStack(tb, longReset)
			prime(tb, s.svc, s.do)
			cbOnly := failsafe.With[int](s.cb)
			d := tripped(tb, func(fn func(context.Context) (int, error)) error {
				_, err := cbOnly.Get(func() (int, error) { return fn(tb.Context()) })
				return err
			})
			return func(ctx context.Context) error { return d.checkServed(s.do(ctx, d.call)) }
		}},
	}}
)

// service is the call the stack rows guard: it succeeds, and counts the
// calls that did not get a context of their own that the stack's timeout
// can end (a library that skipped the timeout would pass the caller's
// context through).
type service struct {
	caller  context.Context
	skipped atomic.Int64
}

func newService(tb testing.TB) *service { return &service{caller: tb.Context()} }

func (s *service) call(ctx context.Context) (int, error) {
	if ctx == s.caller || ctx.Done() == nil {
		s.skipped.Add(1)
	}
	return good, nil
}

// check verifies a stack call's result and that the call had its timeout.
func (s *service) check(v int, err error) error {
	if err := checkOK(v, err); err != nil {
		return err
	}
	if n := s.skipped.Load(); n != 0 {
		return fmt.Errorf("%d calls ran without the stack's timeout", n)
	}
	return nil
}

// checkServed verifies that a call to the failing service was answered by
// the fallback with the good value, without reaching the service.
func (d *down) checkServed(v int, err error) error {
	if err := checkOK(v, err); err != nil {
		return err
	}
	if n := d.calls.Load(); n != d.tripped {
		return fmt.Errorf("the service was called %d times after the circuit opened", n-d.tripped)
	}
	return nil
}

// bulwarkStack is bulwark's stack, built with bulwark.Chain.
type bulwarkStack struct {
	svc *service
	br  *breaker.Breaker
	mw  bulwark.Middleware[int]
}

func newBulwarkStack(tb testing.TB, reset time.Duration) *bulwarkStack {
	tb.Helper()
	c, err := cache.New[string, int](cache.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	br := newBreaker(tb, reset, requestTimeout)
	return &bulwarkStack{
		svc: newService(tb),
		br:  br,
		mw: bulwark.Chain(
			cache.Fallback[int](c, fallbackKey, cache.FallbackConfig{MaxAge: maxAge}),
			breaker.Middleware[int](br),
			retry.Middleware[int](newRetrier(tb, retry.Config{})),
		),
	}
}

// newPipelineStack is the same stack as newBulwarkStack, as the executor
// "bench" of a pipeline.Stack.
func newPipelineStack(tb testing.TB, reset time.Duration) *pipeline.Stack {
	tb.Helper()
	fb := &pipeline.FallbackConfig{}
	fb.MaxAge = maxAge
	st, err := pipeline.New(pipeline.Config{
		Fallback: fb,
		Breaker: &breaker.Config{
			FailureThreshold: failureThreshold,
			SuccessThreshold: successThreshold,
			ResetTimeout:     reset,
			RequestTimeout:   requestTimeout,
		},
		Retry: &retry.Config{},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// primeBulwark stores a good value by one successful call.
func primeBulwark(tb testing.TB, s *bulwarkStack) {
	tb.Helper()
	if err := s.svc.check(s.mw(s.svc.call)(tb.Context())); err != nil {
		tb.Fatal(err)
	}
}

// prime stores a good value by one successful call through do.
func prime(tb testing.TB, svc *service, do func(context.Context, func(context.Context) (int, error)) (int, error)) {
	tb.Helper()
	if err := svc.check(do(tb.Context(), svc.call)); err != nil {
		tb.Fatal(err)
	}
}

// gobreakerStack is the closest composition gobreaker allows: a
// hand-written fallback around the breaker, inside which a
// context.WithTimeout bounds a backoff/v4 retry loop.
type gobreakerStack struct {
	svc   *service
	cb    *gobreaker.CircuitBreaker[int]
	store *lastGood
}

func newGobreakerStack(tb testing.TB, reset time.Duration) *gobreakerStack {
	return &gobreakerStack{svc: newService(tb), cb: newGobreaker(reset), store: newLastGood()}
}

func (s *gobreakerStack) do(ctx context.Context, fn func(context.Context) (int, error)) (int, error) {
	v, err := s.cb.Execute(func() (int, error) {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		return backoff.RetryWithData(func() (int, error) { return fn(ctx) }, exponentialBackOff(ctx))
	})
	if err == nil {
		s.store.set(fallbackKey, v)
		return v, nil
	}
	if cached, ok := s.store.get(fallbackKey); ok {
		return cached, nil
	}
	return v, err
}

// failsafeStack is failsafe-go's composition: fallback, circuit breaker,
// timeout and retry policies in one executor. The fallback serves from a
// lastGood that the call fills.
type failsafeStack struct {
	svc   *service
	cb    circuitbreaker.CircuitBreaker[int]
	ex    failsafe.Executor[int]
	store *lastGood
}

func newFailsafeStack(tb testing.TB, reset time.Duration) *failsafeStack {
	s := &failsafeStack{svc: newService(tb), cb: newFailsafeBreaker(reset), store: newLastGood()}
	fb := fallback.NewWithFunc(func(exec failsafe.Execution[int]) (int, error) {
		if v, ok := s.store.get(fallbackKey); ok {
			return v, nil
		}
		return 0, exec.LastError()
	})
	s.ex = failsafe.With[int](fb, s.cb, timeout.New[int](requestTimeout), exponentialRetryPolicy())
	return s
}

func (s *failsafeStack) do(ctx context.Context, fn func(context.Context) (int, error)) (int, error) {
	return s.ex.WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[int]) (int, error) {
		v, err := fn(exec.Context())
		if err == nil {
			s.store.set(fallbackKey, v)
		}
		return v, err
	})
}

// lastGood is the fallback store the peers lack, as small as a call site
// would write it: the last good value per key with the time it was
// stored, served while younger than maxAge. (A bulwark cache also bounds
// its size, expires entries, shards its lock and counts hits.) It is safe
// for concurrent use.
type lastGood struct {
	mu sync.RWMutex
	m  map[string]stamped
}

type stamped struct {
	v  int
	at time.Time
}

func newLastGood() *lastGood { return &lastGood{m: make(map[string]stamped)} }

func (l *lastGood) set(key string, v int) {
	now := time.Now()
	l.mu.Lock()
	l.m[key] = stamped{v, now}
	l.mu.Unlock()
}

func (l *lastGood) get(key string) (int, bool) {
	l.mu.RLock()
	s, ok := l.m[key]
	l.mu.RUnlock()
	if !ok || time.Since(s.at) >= maxAge {
		return 0, false
	}
	return s.v, true
}
