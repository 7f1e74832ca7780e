package breaker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

// The service-outage timeline of docs/breaker.md, with the default
// configuration, in both modes.
func TestOutageTimeline(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				b := newBreakerT(t, m.cfg(Config{}, rec))
				c := newClock()
				sec := time.Second

				for _, at := range []time.Duration{10 * sec, 15 * sec, 20 * sec, 25 * sec} {
					c.at(at)
					ran, err := call(b, errBoom)
					require.True(t, ran)
					require.ErrorIs(t, err, errBoom)
					require.Equal(t, Closed, b.State(), "at %v", at)
				}
				c.at(30 * sec)
				fail(b)
				require.Equal(t, Open, b.State())
				require.Equal(t, c.start.Add(60*sec), b.Stats().NextAttempt)

				for _, at := range []time.Duration{35 * sec, 40 * sec, 45 * sec} {
					c.at(at)
					ran, err := call(b, nil)
					require.False(t, ran, "at %v the call must not run", at)
					require.ErrorIs(t, err, ErrOpen)
					require.ErrorIs(t, err, bulwark.ErrRejected)
				}

				c.at(60 * sec)
				ran, err := call(b, nil)
				require.True(t, ran, "at 1:00 the call is a probe")
				require.NoError(t, err)
				require.Equal(t, HalfOpen, b.State())

				c.at(65 * sec)
				require.NoError(t, ok(b))
				require.Equal(t, Closed, b.State())

				st := b.Stats()
				assert.Equal(t, int64(5), st.Failures)
				assert.Equal(t, int64(2), st.Successes)
				assert.Equal(t, int64(3), st.Rejections)
				assert.Equal(t, int64(10), st.Total)
				assert.Equal(t, int64(1), st.TimesOpened)
				assert.Equal(t, int64(1), st.TimesClosed)
				assert.Equal(t, c.start.Add(65*sec), st.LastStateChange)
				assert.Equal(t, c.start.Add(30*sec), st.LastFailure)
				assert.Equal(t, c.start.Add(65*sec), st.LastSuccess)
				assert.True(t, st.NextAttempt.IsZero())

				if m.name != "timed" {
					return
				}
				assert.Equal(t, []string{
					"request:failure", // 0:10
					"request:failure", // 0:15
					"request:failure", // 0:20
					"request:failure", // 0:25
					"request:failure", // 0:30
					"circuit:opened CLOSED->OPEN",
					"request:rejected",                  // 0:35
					"request:rejected",                  // 0:40
					"request:rejected",                  // 0:45
					"circuit:half-open OPEN->HALF_OPEN", // 1:00
					"request:success",
					"request:success", // 1:05
					"circuit:closed HALF_OPEN->CLOSED",
				}, rec.lines())
				events := rec.all()
				opened := events[5]
				assert.Equal(t, "svc", opened.Executor)
				assert.Equal(t, c.start.Add(30*sec), opened.Time)
				detail, isStats := opened.Detail.(Stats)
				require.True(t, isStats, "circuit events carry a Stats, got %T", opened.Detail)
				assert.Equal(t, Open, detail.State)
				assert.Equal(t, int64(5), detail.ConsecutiveFailures)
				assert.Equal(t, c.start.Add(60*sec), detail.NextAttempt)
				assert.ErrorIs(t, events[6].Err, ErrOpen)
				assert.Equal(t, c.start.Add(60*sec), events[9].Time)
				assert.Equal(t, Closed, events[12].Detail.(Stats).State)
				for _, e := range events {
					assert.Equal(t, "svc", e.Executor)
				}
			})
		})
	}
}

func TestFailuresOutsideTheWindowDoNotCount(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBreakerT(t, m.cfg(Config{}, &recorder{}))
				for range 4 {
					fail(b)
				}
				time.Sleep(61 * time.Second)
				fail(b)
				assert.Equal(t, Closed, b.State())
				assert.Equal(t, int64(5), b.Stats().ConsecutiveFailures)
				for range 3 {
					fail(b)
				}
				assert.Equal(t, Closed, b.State(), "four failures inside the window")
				fail(b)
				assert.Equal(t, Open, b.State(), "five failures inside the window")
			})
		})
	}
}

func TestSuccessResetsTheRun(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			b := newBreakerT(t, m.cfg(Config{}, &recorder{}))
			for range 4 {
				fail(b)
			}
			require.NoError(t, ok(b))
			assert.Zero(t, b.Stats().ConsecutiveFailures)
			for range 4 {
				fail(b)
			}
			assert.Equal(t, Closed, b.State())
			fail(b)
			assert.Equal(t, Open, b.State())
		})
	}
}

func TestHalfOpenProbeLimitUnderConcurrentCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, SuccessThreshold: 5, HalfOpenMaxCalls: 3, RequestTimeout: -1})
		openBreaker(t, b)
		time.Sleep(30 * time.Second)
		synctest.Wait()

		release := make(chan struct{})
		var running, rejected atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				_, err := Do(context.Background(), b, func(context.Context) (int, error) {
					running.Add(1)
					<-release
					return 0, nil
				})
				if errors.Is(err, ErrTooManyProbes) {
					require.ErrorIs(t, err, bulwark.ErrRejected)
					rejected.Add(1)
				} else {
					require.NoError(t, err)
				}
			})
		}
		synctest.Wait() // every caller has either entered fn or been rejected
		assert.Equal(t, int32(3), running.Load())
		assert.Equal(t, int32(7), rejected.Load())
		assert.Equal(t, HalfOpen, b.State())
		close(release)
		wg.Wait()

		// Three successes of five: still HALF_OPEN, and the slots are free.
		assert.Equal(t, HalfOpen, b.State())
		require.NoError(t, ok(b))
		require.NoError(t, ok(b))
		assert.Equal(t, Closed, b.State())
		st := b.Stats()
		assert.Equal(t, int64(7), st.Rejections)
		assert.Equal(t, int64(5), st.Successes)
	})
}

func TestFailedProbeReopensWithFreshTimeout(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBreakerT(t, m.cfg(Config{FailureThreshold: 1, ResetTimeout: 10 * time.Second}, &recorder{}))
				c := newClock()
				openBreaker(t, b)
				c.at(10 * time.Second)
				ran, _ := call(b, errBoom)
				require.True(t, ran)
				require.Equal(t, Open, b.State())
				assert.Equal(t, c.start.Add(20*time.Second), b.Stats().NextAttempt)
				c.at(19 * time.Second)
				ran, err := call(b, nil)
				assert.False(t, ran)
				assert.ErrorIs(t, err, ErrOpen)
				c.at(20 * time.Second)
				ran, _ = call(b, nil)
				assert.True(t, ran)
				assert.Equal(t, HalfOpen, b.State())
				assert.Equal(t, int64(2), b.Stats().TimesOpened)
			})
		})
	}
}

func TestCallerCancellationCountsNeitherWay(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				b := newBreakerT(t, m.cfg(Config{FailureThreshold: 2, HalfOpenMaxCalls: 1}, rec))
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				cancelled := func() error {
					_, err := Do(ctx, b, func(ctx context.Context) (int, error) { return 0, ctx.Err() })
					return err
				}
				fail(b)
				require.ErrorIs(t, cancelled(), context.Canceled)
				require.ErrorIs(t, cancelled(), context.Canceled)
				st := b.Stats()
				assert.Equal(t, Closed, st.State)
				assert.Equal(t, int64(2), st.Ignored)
				assert.Equal(t, int64(1), st.Failures)
				assert.Equal(t, int64(1), st.ConsecutiveFailures, "the run is neither extended nor broken")
				fail(b)
				require.Equal(t, Open, b.State())

				// A call whose caller has already gone does not become the
				// probe; a probe whose caller gives up frees its slot.
				time.Sleep(30 * time.Second)
				synctest.Wait()
				require.ErrorIs(t, cancelled(), context.Canceled)
				assert.Equal(t, Open, b.State(), "a done context makes no transition")
				pctx, pcancel := context.WithCancel(context.Background())
				_, err := Do(pctx, b, func(ctx context.Context) (int, error) { pcancel(); return 0, ctx.Err() })
				require.ErrorIs(t, err, context.Canceled)
				assert.Equal(t, HalfOpen, b.State())
				ran, err := call(b, nil)
				assert.True(t, ran, "the single probe slot was freed")
				assert.NoError(t, err)
				for _, e := range rec.all() {
					assert.NotErrorIs(t, e.Err, context.Canceled, "ignored calls emit no request event")
				}
			})
		})
	}
}

func TestStaleGenerationCannotChangeNewState(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBreakerT(t, m.cfg(Config{FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: time.Second}, &recorder{}))
				slow := func(result error) chan struct{} {
					release := make(chan struct{})
					go Do(context.Background(), b, func(context.Context) (int, error) {
						<-release
						return 0, result
					})
					synctest.Wait()
					return release
				}

				// A success that started while CLOSED, arriving while OPEN.
				release := slow(nil)
				fail(b)
				require.Equal(t, Open, b.State())
				close(release)
				synctest.Wait()
				assert.Equal(t, Open, b.State())

				// A failure that started before Reset, arriving after.
				b.Reset()
				release = slow(errBoom)
				b.Reset()
				close(release)
				synctest.Wait()
				assert.Equal(t, Closed, b.State())
				assert.Equal(t, int64(2), b.Stats().Failures, "the stale failure is still counted in the totals")

				// A probe's failure arriving after the circuit closed.
				openBreaker(t, b)
				time.Sleep(time.Second)
				synctest.Wait()
				release = slow(errBoom) // the probe
				require.Equal(t, HalfOpen, b.State())
				b.Reset()
				close(release)
				synctest.Wait()
				assert.Equal(t, Closed, b.State())
			})
		})
	}
}

func TestPanicCountsAndPropagates(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			rec := &recorder{}
			b := newBreakerT(t, m.cfg(Config{FailureThreshold: 1}, rec))
			type boom struct{ n int }
			value := &boom{7}
			func() {
				defer func() {
					assert.Same(t, value, recover(), "the panic value is unchanged")
				}()
				Do(context.Background(), b, func(context.Context) (int, error) { panic(value) })
				t.Fatal("Do returned")
			}()
			st := b.Stats()
			assert.Equal(t, int64(1), st.Failures)
			assert.Equal(t, Open, st.State)
			if m.name == "timed" {
				assert.Equal(t, []string{"request:failure", "circuit:opened CLOSED->OPEN"}, rec.lines())
				assert.ErrorIs(t, rec.all()[0].Err, errPanicked)
			}
		})
	}
}

func TestPanicInProbeFreesTheSlotAndReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, HalfOpenMaxCalls: 1})
		openBreaker(t, b)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		func() {
			defer func() { assert.Equal(t, "probe", recover()) }()
			Do(context.Background(), b, func(context.Context) (int, error) { panic("probe") })
		}()
		assert.Equal(t, Open, b.State())
		assert.Equal(t, int64(2), b.Stats().TimesOpened)
	})
}

func TestRejectionMarksTheReport(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			b := newBreakerT(t, m.cfg(Config{FailureThreshold: 1}, &recorder{}))
			ctx, report := bulwark.WithReport(context.Background())
			_, err := Do(ctx, b, func(context.Context) (int, error) { return 1, nil })
			require.NoError(t, err)
			assert.False(t, report.Rejected())
			openBreaker(t, b)
			ctx, report = bulwark.WithReport(context.Background())
			v, err := Do(ctx, b, func(context.Context) (int, error) { return 1, nil })
			assert.Zero(t, v)
			assert.ErrorIs(t, err, ErrOpen)
			assert.True(t, report.Rejected())
		})
	}
}

func TestErrorsWrapRejected(t *testing.T) {
	assert.EqualError(t, ErrOpen, "breaker: circuit open")
	assert.EqualError(t, ErrTooManyProbes, "breaker: too many half-open probes")
	assert.ErrorIs(t, ErrOpen, bulwark.ErrRejected)
	assert.ErrorIs(t, ErrTooManyProbes, bulwark.ErrRejected)
	assert.NotErrorIs(t, ErrOpen, ErrTooManyProbes)
	assert.NotErrorIs(t, ErrTimeout, bulwark.ErrRejected)
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "CLOSED", Closed.String())
	assert.Equal(t, "OPEN", Open.String())
	assert.Equal(t, "HALF_OPEN", HalfOpen.String())
	assert.Equal(t, "State(7)", State(7).String())
}

func TestStatePredicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1})
		assert.True(t, b.IsClosed())
		assert.Equal(t, "svc", b.Name())
		openBreaker(t, b)
		assert.True(t, b.IsOpen())
		assert.False(t, b.IsClosed())
		time.Sleep(30 * time.Second)
		synctest.Wait() // the reset timer fires at the same instant
		assert.True(t, b.IsOpen(), "OPEN until the next call")
		ok(b)
		assert.True(t, b.IsHalfOpen())
	})
}

func TestForceOpenAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := newBreakerT(t, Config{OnEvent: rec.listen})
		b.ForceOpen()
		st := b.Stats()
		assert.Equal(t, Open, st.State)
		assert.True(t, st.Forced)
		assert.True(t, st.NextAttempt.IsZero())
		time.Sleep(time.Hour)
		synctest.Wait()
		ran, err := call(b, nil)
		assert.False(t, ran, "forced open ignores the reset timeout")
		assert.ErrorIs(t, err, ErrOpen)

		b.Reset()
		assert.Equal(t, Closed, b.State())
		assert.False(t, b.Stats().Forced)
		require.NoError(t, ok(b))
		assert.Equal(t, []string{
			"circuit:opened CLOSED->OPEN",
			"request:rejected",
			"circuit:closed OPEN->CLOSED",
			"request:success",
		}, rec.lines())

		// ForceOpen on an OPEN circuit holds it: the pending reset is off.
		rec.reset()
		openBreaker(t, b)
		b.ForceOpen()
		time.Sleep(time.Hour)
		synctest.Wait()
		ran, _ = call(b, nil)
		assert.False(t, ran)
		assert.NotContains(t, rec.lines(), "circuit:half-open OPEN->HALF_OPEN")
		assert.Equal(t, 1, countOf(rec.lines(), "circuit:opened CLOSED->OPEN"))

		// Reset keeps the totals and clears the run.
		b.Reset()
		fail(b)
		before := b.Stats()
		b.Reset()
		after := b.Stats()
		assert.Equal(t, before.Failures, after.Failures)
		assert.Zero(t, after.ConsecutiveFailures)
	})
}

func countOf(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

func TestListenerMayCallBack(t *testing.T) {
	var b *Breaker
	var seen []State
	b = newBreakerT(t, Config{FailureThreshold: 1, OnEvent: func(e bulwark.Event) {
		// Stats takes the mutex: this deadlocks if events are delivered
		// under it.
		seen = append(seen, b.Stats().State, b.State())
	}})
	fail(b)
	assert.Equal(t, []State{Open, Open, Open, Open}, seen, fmtStates(seen...))
}

func TestMiddleware(t *testing.T) {
	b := newBreakerT(t, Config{FailureThreshold: 1})
	calls := 0
	fn := Middleware[string](b)(func(context.Context) (string, error) {
		calls++
		return "", errBoom
	})
	_, err := fn(context.Background())
	assert.ErrorIs(t, err, errBoom)
	_, err = fn(context.Background())
	assert.ErrorIs(t, err, ErrOpen)
	assert.Equal(t, 1, calls)

	// One breaker serves several result types.
	_, err = Do(context.Background(), b, func(context.Context) (float64, error) { return 1, nil })
	assert.ErrorIs(t, err, ErrOpen)
}

func TestAllow(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBreakerT(t, m.cfg(Config{FailureThreshold: 2, SuccessThreshold: 1, HalfOpenMaxCalls: 1}, &recorder{}))
				done, err := b.Allow()
				require.NoError(t, err)
				done(nil)
				done, err = b.Allow()
				require.NoError(t, err)
				done(errBoom)
				done, err = b.Allow()
				require.NoError(t, err)
				done(context.Canceled) // the caller gave up: neither way
				assert.Equal(t, Closed, b.State())
				done, _ = b.Allow()
				done(errBoom)
				require.Equal(t, Open, b.State())

				done, err = b.Allow()
				assert.Nil(t, done)
				assert.ErrorIs(t, err, ErrOpen)

				time.Sleep(30 * time.Second)
				synctest.Wait()
				probe, err := b.Allow()
				require.NoError(t, err)
				assert.Equal(t, HalfOpen, b.State())
				_, err = b.Allow()
				assert.ErrorIs(t, err, ErrTooManyProbes)
				probe(nil)
				assert.Equal(t, Closed, b.State())

				st := b.Stats()
				assert.Equal(t, int64(2), st.Successes)
				assert.Equal(t, int64(2), st.Failures)
				assert.Equal(t, int64(1), st.Ignored)
				assert.Equal(t, int64(2), st.Rejections)
			})
		})
	}
}

func TestAllowStaleDone(t *testing.T) {
	b := newBreakerT(t, Config{FailureThreshold: 1, RequestTimeout: -1})
	done, err := b.Allow()
	require.NoError(t, err)
	b.ForceOpen()
	b.Reset()
	fail2, err := b.Allow()
	require.NoError(t, err)
	done(errBoom) // admitted before the Reset: stale
	assert.Equal(t, Closed, b.State())
	fail2(errBoom)
	assert.Equal(t, Open, b.State())
}

func TestIsFailureDecides(t *testing.T) {
	notFound := errors.New("not found")
	var gotCtx context.Context
	b := newBreakerT(t, Config{
		FailureThreshold: 2,
		IsFailure: func(ctx context.Context, err error) bool {
			gotCtx = ctx
			return !errors.Is(err, notFound)
		},
	})
	ctx := context.WithValue(context.Background(), ctxKey{}, 1)
	fail(b)
	_, err := Do(ctx, b, func(context.Context) (int, error) { return 0, notFound })
	assert.ErrorIs(t, err, notFound)
	assert.Equal(t, 1, gotCtx.Value(ctxKey{}), "IsFailure gets the caller's context")
	st := b.Stats()
	assert.Equal(t, int64(1), st.Successes, "an error IsFailure rejects counts as a success when the service answered")
	assert.Zero(t, st.ConsecutiveFailures)
	fail(b)
	assert.Equal(t, Closed, b.State())
}

type ctxKey struct{}

func TestIsFailureCanCountCancellation(t *testing.T) {
	b := newBreakerT(t, Config{
		FailureThreshold: 1,
		IsFailure:        func(context.Context, error) bool { return true },
	})
	ctx, cancel := context.WithCancel(context.Background())
	// Cancelled while the call runs: IsFailure decides. (A context done
	// before the call does not run it: TestDoneContextFirst.)
	Do(ctx, b, func(ctx context.Context) (int, error) { cancel(); return 0, ctx.Err() })
	assert.Equal(t, Open, b.State())
}

func TestConcurrentCallsKeepTotals(t *testing.T) {
	b := newBreakerT(t, Config{FailureThreshold: 1000, RequestTimeout: -1})
	var wg sync.WaitGroup
	const goroutines, calls = 8, 500
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				if (g+i)%10 == 0 {
					fail(b)
				} else {
					ok(b)
				}
			}
		})
	}
	wg.Wait()
	st := b.Stats()
	assert.Equal(t, int64(goroutines*calls), st.Total)
	assert.Equal(t, int64(goroutines*calls/10), st.Failures)
	assert.Equal(t, Closed, st.State)
}

func TestFastPathsDoNotAllocate(t *testing.T) {
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	closed := newBreakerT(t, Config{RequestTimeout: -1})
	ok(closed) // the first success stamps LastSuccess
	assert.Zero(t, testing.AllocsPerRun(1000, func() { Do(ctx, closed, fn) }), "closed success")

	done, _ := closed.Allow()
	done(nil)
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		done, _ := closed.Allow()
		done(nil)
	}), "closed Allow")

	def := newBreakerT(t, Config{})
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		done, _ := def.Allow()
		done(nil)
	}), "closed Allow with the default request timeout (which Allow ignores)")

	open := newBreakerT(t, Config{RequestTimeout: -1})
	open.ForceOpen()
	assert.Zero(t, testing.AllocsPerRun(1000, func() { Do(ctx, open, fn) }), "open rejection")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { open.Allow() }), "open Allow")

	// The default request timeout allocates a context only when the
	// caller's deadline is later than the breaker's.
	early, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	assert.Zero(t, testing.AllocsPerRun(1000, func() { Do(early, def, fn) }), "default timeout, earlier caller deadline")
	assert.Positive(t, testing.AllocsPerRun(100, func() { Do(ctx, def, fn) }), "default timeout, a context is made")
}
