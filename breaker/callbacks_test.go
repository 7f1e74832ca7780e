package breaker

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

// Issue 14, item 2: a panicking user callback must not wedge the breaker.
// Each test gives one callback a panic, checks that the panic reaches the
// caller unchanged, and then that the breaker is in the right state, its
// lock is free (Stats takes it) and the next call or probe is let through.

// mustPanic runs f and returns what it panicked with; it fails the test if
// f returned.
func mustPanic(t *testing.T, f func()) (p any) {
	t.Helper()
	returned := false
	func() {
		defer func() { p = recover() }()
		f()
		returned = true
	}()
	require.False(t, returned, "the panic must reach the caller")
	return p
}

type codedError struct{ code int }

func (e *codedError) Error() string { return "coded" }

// assertingIsFailure is the IsFailure: an unchecked type assertion
// that panics on any error that is not a *codedError.
func assertingIsFailure(_ context.Context, err error) bool {
	return err.(*codedError).code >= 500
}

// halfOpen opens b (FailureThreshold 1, default ResetTimeout) and waits
// until the next call is a probe.
func halfOpen(t *testing.T, b *Breaker) {
	t.Helper()
	openBreaker(t, b)
	time.Sleep(30 * time.Second)
	synctest.Wait()
}

// probeAllowed checks that a successful probe runs within the next 10
// virtual minutes (it would get ErrTooManyProbes forever from a wedged
// breaker) and returns the state after it.
func probeAllowed(t *testing.T, b *Breaker) State {
	t.Helper()
	time.Sleep(10 * time.Minute)
	synctest.Wait()
	ran, err := call(b, nil)
	require.True(t, ran, "the probe slot was given back")
	require.NoError(t, err)
	return b.State()
}

func TestIsFailurePanicInProbeFreesTheSlot(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				b := newBreakerT(t, m.cfg(Config{FailureThreshold: 1, HalfOpenMaxCalls: 1, SuccessThreshold: 1,
					IsFailure: assertingIsFailure}, rec))
				mustPanic(t, func() { fail(b) }) // counts as a failure: opens it
				require.Equal(t, Open, b.State())
				time.Sleep(30 * time.Second)
				synctest.Wait()
				p := mustPanic(t, func() { fail(b) })
				var te *runtime.TypeAssertionError
				require.ErrorAs(t, p.(error), &te, "the panic value is IsFailure's own")
				st := b.Stats()
				assert.Equal(t, Open, st.State, "the probe counted as a failure: OPEN again")
				assert.Equal(t, int64(2), st.TimesOpened)
				assert.Equal(t, Closed, probeAllowed(t, b))
				if m.name == "timed" {
					assert.Contains(t, rec.lines(), "request:failure")
				}
			})
		})
	}
}

func TestIsFailurePanicCountsAsFailureOnEveryPath(t *testing.T) {
	paths := map[string]struct {
		cfg  Config
		call func(b *Breaker) error
	}{
		"fast": {Config{RequestTimeout: -1}, func(b *Breaker) error { return fail(b) }},
		"sampled": {Config{RequestTimeout: -1}, func(b *Breaker) error {
			for i := range b.counters.s {
				b.counters.s[i].successes.Store(sampleMask) // every stripe's next call is measured
			}
			return fail(b)
		}},
		"timed":    {Config{}, func(b *Breaker) error { return fail(b) }},
		"listener": {Config{OnEvent: func(bulwark.Event) {}}, func(b *Breaker) error { return fail(b) }},
		"ratio": {Config{FailureRatio: 1, MinimumThroughput: 1, RequestTimeout: -1},
			func(b *Breaker) error { return fail(b) }},
		"allow-closed": {Config{RequestTimeout: -1}, func(b *Breaker) error {
			done, err := b.Allow()
			require.NoError(t, err)
			done(errBoom)
			return nil
		}},
		"allow-slow": {Config{OnEvent: func(bulwark.Event) {}}, func(b *Breaker) error {
			done, err := b.Allow()
			require.NoError(t, err)
			done(errBoom)
			return nil
		}},
		"abandon": {Config{AbandonOnTimeout: true}, func(b *Breaker) error {
			_, err := Middleware[int](b)(func(context.Context) (int, error) { return 0, errBoom })(context.Background())
			return err
		}},
	}
	for name, p := range paths {
		t.Run(name, func(t *testing.T) {
			cfg := p.cfg
			if cfg.FailureRatio == 0 {
				cfg.FailureThreshold = 1
			}
			cfg.IsFailure = assertingIsFailure
			b := newBreakerT(t, cfg)
			mustPanic(t, func() { p.call(b) })
			st := b.Stats()
			assert.Equal(t, int64(1), st.Failures, "a panic in IsFailure counts the call as a failure")
			assert.Equal(t, Open, st.State)
		})
	}
}

func TestIsFailurePanicReleasesTheTimeoutContext(t *testing.T) {
	b := newBreakerT(t, Config{IsFailure: assertingIsFailure})
	var callCtx context.Context
	mustPanic(t, func() {
		Do(context.Background(), b, func(ctx context.Context) (int, error) { callCtx = ctx; return 0, errBoom })
	})
	require.NotNil(t, callCtx)
	assert.ErrorIs(t, callCtx.Err(), context.Canceled, "the request-timeout context was cancelled")
}

func TestIsFailurePanicInAllowProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, HalfOpenMaxCalls: 1, SuccessThreshold: 1, IsFailure: assertingIsFailure})
		mustPanic(t, func() { fail(b) }) // opens it
		require.Equal(t, Open, b.State())
		time.Sleep(30 * time.Second)
		synctest.Wait()
		done, err := b.Allow()
		require.NoError(t, err)
		require.Equal(t, HalfOpen, b.State())
		mustPanic(t, func() { done(errBoom) })
		assert.Equal(t, Open, b.State())
		assert.Equal(t, Closed, probeAllowed(t, b))
	})
}

func TestIsFailurePanicOnAbandonedTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, HalfOpenMaxCalls: 1, SuccessThreshold: 1,
			RequestTimeout: time.Second, AbandonOnTimeout: true, IsFailure: assertingIsFailure})
		release := make(chan struct{})
		slow := Middleware[int](b)(func(context.Context) (int, error) { <-release; return 0, nil })
		mustPanic(t, func() { slow(context.Background()) }) // the timeout opens it
		require.Equal(t, Open, b.State())
		time.Sleep(30 * time.Second)
		synctest.Wait()
		mustPanic(t, func() { slow(context.Background()) }) // the probe times out; IsFailure panics
		assert.Equal(t, Open, b.State(), "the probe counted as a failure")
		close(release) // let both abandoned functions finish
		synctest.Wait()
		assert.Equal(t, Closed, probeAllowed(t, b))
	})
}

// panicOn returns a listener that panics on events of kind (and records
// the others).
func panicOn(kind bulwark.EventKind, rec *recorder) bulwark.Listener {
	return func(e bulwark.Event) {
		if e.Kind == kind {
			panic("listener: " + string(kind))
		}
		rec.listen(e)
	}
}

func TestListenerPanics(t *testing.T) {
	cfg := func(kind bulwark.EventKind, rec *recorder) Config {
		return Config{FailureThreshold: 1, HalfOpenMaxCalls: 1, SuccessThreshold: 1, OnEvent: panicOn(kind, rec)}
	}
	t.Run("circuit:opened", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBreakerT(t, cfg(bulwark.CircuitOpened, &recorder{}))
			assert.Equal(t, "listener: circuit:opened", mustPanic(t, func() { fail(b) }))
			st := b.Stats() // the lock is free
			assert.Equal(t, Open, st.State)
			assert.Equal(t, int64(1), st.Failures)
			assert.False(t, st.NextAttempt.IsZero(), "the reset timeout is armed")
			ran, err := call(b, nil)
			assert.False(t, ran)
			assert.ErrorIs(t, err, ErrOpen)
			assert.Equal(t, Closed, probeAllowed(t, b))
		})
	})
	t.Run("circuit:half-open", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBreakerT(t, cfg(bulwark.CircuitHalfOpen, &recorder{}))
			halfOpen(t, b)
			ran := false
			mustPanic(t, func() {
				Do(context.Background(), b, func(context.Context) (int, error) { ran = true; return 0, nil })
			})
			assert.False(t, ran, "the call whose admission panicked does not run")
			st := b.Stats()
			assert.Equal(t, HalfOpen, st.State, "the transition is complete")
			assert.Equal(t, int64(1), st.Ignored, "the call counts neither way")
			ran, err := call(b, nil)
			require.True(t, ran, "its probe slot was given back")
			require.NoError(t, err)
			assert.Equal(t, Closed, b.State())
		})
	})
	t.Run("circuit:closed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBreakerT(t, cfg(bulwark.CircuitClosed, &recorder{}))
			halfOpen(t, b)
			mustPanic(t, func() { ok(b) })
			assert.Equal(t, Closed, b.Stats().State)
			require.NoError(t, ok(b))
			b.ForceOpen()
			mustPanic(t, func() { b.Reset() })
			assert.Equal(t, Closed, b.Stats().State, "Reset is complete")
			assert.False(t, b.Stats().Forced)
			require.NoError(t, ok(b))
		})
	})
	t.Run("request:success", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := &recorder{}
			b := newBreakerT(t, cfg(bulwark.RequestSuccess, rec))
			halfOpen(t, b)
			mustPanic(t, func() { ok(b) })
			assert.Equal(t, Closed, b.Stats().State, "the probe's success was counted before the listener ran")
			assert.Equal(t, int64(1), b.Stats().Successes)
		})
	})
	t.Run("request:failure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBreakerT(t, cfg(bulwark.RequestFailure, &recorder{}))
			mustPanic(t, func() { fail(b) })
			assert.Equal(t, Open, b.Stats().State)
			time.Sleep(30 * time.Second)
			synctest.Wait()
			mustPanic(t, func() { fail(b) }) // a failed probe
			st := b.Stats()
			assert.Equal(t, Open, st.State)
			assert.Equal(t, int64(2), st.TimesOpened)
			assert.Equal(t, Closed, probeAllowed(t, b))
		})
	})
	t.Run("request:rejected", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBreakerT(t, cfg(bulwark.RequestRejected, &recorder{}))
			halfOpen(t, b)
			release := make(chan struct{})
			go Do(context.Background(), b, func(context.Context) (int, error) { <-release; return 0, nil })
			synctest.Wait()
			mustPanic(t, func() { ok(b) }) // too many probes: its rejection event panics
			assert.Equal(t, int64(1), b.Stats().Rejections)
			close(release)
			synctest.Wait()
			assert.Equal(t, Closed, b.State(), "the running probe was not disturbed")
		})
	})
}

// panicHandler is a slog.Handler whose Handle panics.
type panicHandler struct{ slog.Handler }

func (panicHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (panicHandler) Handle(context.Context, slog.Record) error { panic("log handler") }

func TestLoggerHandlerPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, HalfOpenMaxCalls: 1, SuccessThreshold: 1,
			Logger: slog.New(panicHandler{})})
		assert.Equal(t, "log handler", mustPanic(t, func() { fail(b) }))
		assert.Equal(t, Open, b.Stats().State)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		ran := false
		mustPanic(t, func() { // OPEN to HALF_OPEN is logged during admission
			Do(context.Background(), b, func(context.Context) (int, error) { ran = true; return 0, nil })
		})
		assert.False(t, ran)
		assert.Equal(t, HalfOpen, b.State())
		mustPanic(t, func() { ok(b) }) // the slot is free: the probe runs and closes the circuit, which is logged
		assert.Equal(t, Closed, b.State())
		assert.Equal(t, int64(1), b.Stats().Successes)
		assert.NotPanics(t, func() { ok(b) }, "CLOSED calls log nothing")
	})
}
