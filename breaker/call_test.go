package breaker

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

func TestRequestTimeoutCountsAsFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := newBreakerT(t, Config{FailureThreshold: 1, RequestTimeout: 2 * time.Second, OnEvent: rec.listen})
		start := time.Now()
		var cause error
		_, err := Do(context.Background(), b, func(ctx context.Context) (int, error) {
			dl, ok := ctx.Deadline()
			require.True(t, ok)
			assert.Equal(t, start.Add(2*time.Second), dl)
			<-ctx.Done()
			cause = context.Cause(ctx)
			return 0, ctx.Err()
		})
		assert.Equal(t, 2*time.Second, time.Since(start))
		assert.ErrorIs(t, err, ErrTimeout)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "the function's own error stays in the chain")
		assert.EqualError(t, err, "breaker svc: request timeout after 2s: context deadline exceeded")
		assert.Equal(t, ErrTimeout, cause, "the function can tell the breaker's timeout by its cause")
		st := b.Stats()
		assert.Equal(t, int64(1), st.Failures)
		assert.Equal(t, int64(1), st.Timeouts)
		assert.Equal(t, Open, st.State)
		events := rec.all()
		require.NotEmpty(t, events)
		assert.Equal(t, 2*time.Second, events[0].Duration)
		assert.ErrorIs(t, events[0].Err, ErrTimeout)
	})
}

func TestTimeoutErrorNotDoubleWrapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{RequestTimeout: time.Second})
		_, err := Do(context.Background(), b, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, context.Cause(ctx)
		})
		assert.Equal(t, ErrTimeout, err)
	})
}

func TestCallerDeadlineWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, RequestTimeout: 10 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var got context.Context
		_, err := Do(ctx, b, func(ctx context.Context) (int, error) {
			got = ctx
			<-ctx.Done()
			return 0, ctx.Err()
		})
		assert.True(t, got == ctx, "no new context when the caller's deadline is earlier")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, ErrTimeout, "the caller's own deadline is not the breaker's timeout")
		st := b.Stats()
		assert.Equal(t, Closed, st.State, "the caller's deadline counts neither way")
		assert.Equal(t, int64(1), st.Ignored)
		assert.Zero(t, st.Timeouts)

		// A later caller deadline: the breaker's is earlier and applies.
		late, cancel2 := context.WithTimeout(context.Background(), time.Hour)
		defer cancel2()
		start := time.Now()
		Do(late, b, func(ctx context.Context) (int, error) {
			got = ctx
			dl, _ := ctx.Deadline()
			assert.Equal(t, start.Add(10*time.Second), dl)
			return 1, nil
		})
		assert.False(t, got == late)
	})
}

func TestCallerCancelDuringTimedCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, RequestTimeout: 10 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		_, err := Do(ctx, b, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		assert.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, ErrTimeout)
		assert.Equal(t, Closed, b.State())
		assert.Equal(t, int64(1), b.Stats().Ignored)
	})
}

func TestIsFailureCanIgnoreTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{
			FailureThreshold: 1,
			RequestTimeout:   time.Second,
			IsFailure:        func(_ context.Context, err error) bool { return !errors.Is(err, ErrTimeout) },
		})
		_, err := Do(context.Background(), b, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		assert.ErrorIs(t, err, ErrTimeout)
		st := b.Stats()
		assert.Equal(t, Closed, st.State)
		assert.Equal(t, int64(1), st.Timeouts)
		assert.Equal(t, int64(1), st.Ignored, "a timeout IsFailure does not count proves nothing either way")
		assert.Zero(t, st.Successes)
	})
}

func TestAbandonOnTimeoutReturnsAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := newBreakerT(t, Config{FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: time.Second,
			RequestTimeout: 2 * time.Second, AbandonOnTimeout: true, OnEvent: rec.listen})
		c := newClock()
		finished := make(chan struct{})
		_, err := Middleware[int](b)(func(ctx context.Context) (int, error) {
			defer close(finished)
			time.Sleep(4 * time.Second) // ignores its context
			return 1, nil
		})(context.Background())
		assert.Equal(t, 2*time.Second, c.since(), "the caller returns at the deadline")
		assert.ErrorIs(t, err, ErrTimeout)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, Open, b.State(), "the timeout counted as a failure at the deadline")

		// At 0:03 a probe starts; at 0:04 the abandoned call's success
		// arrives and must not count for the new HALF_OPEN period.
		c.at(3 * time.Second)
		release := make(chan struct{})
		go Do(context.Background(), b, func(context.Context) (int, error) { <-release; return 0, nil })
		synctest.Wait()
		require.Equal(t, HalfOpen, b.State())
		<-finished
		c.at(4500 * time.Millisecond)
		st := b.Stats()
		assert.Equal(t, HalfOpen, st.State, "the late result is discarded")
		assert.Zero(t, st.Successes)
		close(release)
		synctest.Wait()
		assert.Equal(t, Closed, b.State())
		assert.Equal(t, int64(1), b.Stats().Successes)
	})
}

func TestAbandonOnCallerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, RequestTimeout: -1, AbandonOnTimeout: true})
		cause := errors.New("user left")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(time.Second, func() { cancel(cause) })
		release := make(chan struct{})
		_, err := Middleware[int](b)(func(context.Context) (int, error) { <-release; return 0, errBoom })(ctx)
		assert.Equal(t, cause, err, "the caller gets its context's cause")
		close(release)
		synctest.Wait()
		st := b.Stats()
		assert.Equal(t, Closed, st.State)
		assert.Equal(t, int64(1), st.Ignored)
		assert.Zero(t, st.Failures, "the late failure is discarded")
	})
}

func TestAbandonReturnsResultsInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{RequestTimeout: time.Minute, AbandonOnTimeout: true, OnEvent: func(bulwark.Event) {}})
		v, err := Middleware[string](b)(func(context.Context) (string, error) {
			time.Sleep(time.Second)
			return "ok", nil
		})(context.Background())
		assert.Equal(t, "ok", v)
		assert.NoError(t, err)
		_, err = Middleware[string](b)(func(context.Context) (string, error) { return "", errBoom })(context.Background())
		assert.ErrorIs(t, err, errBoom)
		st := b.Stats()
		assert.Equal(t, int64(1), st.Successes)
		assert.Equal(t, int64(1), st.Failures)
		assert.Equal(t, time.Second/2, st.MeanLatency)
	})
}

func TestAbandonPanicReachesTheCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, RequestTimeout: time.Minute, AbandonOnTimeout: true})
		func() {
			defer func() { assert.Equal(t, "bad", recover()) }()
			Middleware[int](b)(func(context.Context) (int, error) { panic("bad") })(context.Background())
			t.Fatal("the call returned")
		}()
		assert.Equal(t, Open, b.State())
	})
}

func TestDoWaitsEvenWithAbandonOnTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{RequestTimeout: 2 * time.Second, AbandonOnTimeout: true})
		c := newClock()
		v, err := Do(context.Background(), b, func(ctx context.Context) (int, error) {
			time.Sleep(3 * time.Second) // ignores its context
			return 1, nil
		})
		assert.Equal(t, 3*time.Second, c.since(), "Do runs fn on the caller's goroutine")
		assert.Equal(t, 1, v)
		assert.NoError(t, err, "fn answered, late")
	})
}

func TestDoWithAClosureAllocatesNothing(t *testing.T) {
	b := newBreakerT(t, Config{RequestTimeout: -1})
	ctx := context.Background()
	n := 41
	allocs := testing.AllocsPerRun(1000, func() {
		v, err := Do(ctx, b, func(context.Context) (int, error) { return n + 1, nil })
		if v != 42 || err != nil {
			t.Fatal(v, err)
		}
	})
	assert.Zero(t, allocs, "a capturing closure passed to Do stays on the caller's stack")
}

// Issue 14, item 11(b): a call whose context is already done. The decision
// (see Do): the done context comes first wherever admission does work; the
// two allocation-free paths leave it to fn (CLOSED) or reject (OPEN).
func TestDoneContextFirst(t *testing.T) {
	errGone := errors.New("caller gone")
	done, cancel := context.WithCancelCause(context.Background())
	cancel(errGone)
	run := func(b *Breaker) (ran bool, err error) {
		_, err = Do(done, b, func(ctx context.Context) (int, error) {
			ran = true
			return 0, ctx.Err()
		})
		return ran, err
	}

	t.Run("slow paths: not run, cause returned, ignored", func(t *testing.T) {
		for name, cfg := range map[string]Config{
			"timeout":  {},
			"listener": {RequestTimeout: -1, OnEvent: func(bulwark.Event) {}},
			"ratio":    {RequestTimeout: -1, FailureRatio: 0.5, MinimumThroughput: 1},
		} {
			t.Run(name, func(t *testing.T) {
				b := newBreakerT(t, cfg)
				ran, err := run(b)
				assert.False(t, ran, "fn must not run for a caller that has gone")
				assert.Same(t, errGone, err, "the context's cause")
				st := b.Stats()
				assert.Equal(t, int64(1), st.Ignored)
				assert.Equal(t, int64(1), st.Total)
				assert.Zero(t, st.Failures+st.Successes+st.Rejections)
			})
		}
	})

	t.Run("due OPEN and HALF_OPEN: no transition, no probe slot", func(t *testing.T) {
		for _, m := range modes {
			t.Run(m.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b := newBreakerT(t, m.cfg(Config{FailureThreshold: 1, HalfOpenMaxCalls: 1}, &recorder{}))
					openBreaker(t, b)
					time.Sleep(30 * time.Second)
					synctest.Wait()
					ran, err := run(b)
					assert.False(t, ran)
					assert.Same(t, errGone, err)
					assert.Equal(t, Open, b.State(), "a gone caller does not start the probe period")

					release := make(chan struct{})
					go func() {
						_, _ = Do(context.Background(), b, func(context.Context) (int, error) { <-release; return 0, nil })
					}()
					synctest.Wait()
					require.Equal(t, HalfOpen, b.State())
					ran, err = run(b)
					assert.False(t, ran)
					assert.Same(t, errGone, err, "the done context comes before ErrTooManyProbes")
					close(release)
					synctest.Wait()
					assert.Equal(t, int64(2), b.Stats().Ignored)
					assert.Zero(t, b.Stats().Rejections)
				})
			})
		}
	})

	t.Run("fast paths", func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, RequestTimeout: -1})
		ran, err := run(b)
		assert.True(t, ran, "the allocation-free CLOSED path leaves the context to fn")
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, int64(1), b.Stats().Ignored, "and it counts neither way")
		assert.Equal(t, Closed, b.State())

		openBreaker(t, b)
		ran, err = run(b)
		assert.False(t, ran)
		assert.ErrorIs(t, err, ErrOpen, "the allocation-free OPEN rejection does not look at the context")
	})
}

// A call the Middleware abandons is recorded in the call's Report, with a
// wait that returns the function's late outcome once it ends; a call that
// returned in time records nothing.
func TestAbandonOnTimeoutRecordsTheAbandonedCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{RequestTimeout: time.Second, AbandonOnTimeout: true})
		ctx, report := bulwark.WithReport(context.Background())
		release := make(chan struct{})
		late := errors.New("late failure")
		fn := Middleware[int](b)(func(context.Context) (int, error) {
			<-release // ignores its context
			return 7, late
		})
		_, err := fn(ctx)
		require.ErrorIs(t, err, ErrTimeout)
		wait := report.TakeAbandoned(0)
		require.NotNil(t, wait, "the abandoned call is recorded")
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			v, err := wait()
			assert.Equal(t, 7, v)
			assert.Same(t, late, err)
		}()
		synctest.Wait()
		select {
		case <-returned:
			t.Fatal("wait returned while the function still runs")
		default:
		}
		close(release)
		<-returned
		v, err := wait() // again: the same outcome
		assert.Equal(t, 7, v)
		assert.Same(t, late, err)

		_, err = Middleware[int](b)(func(context.Context) (int, error) { return 1, nil })(ctx)
		require.NoError(t, err)
		assert.Zero(t, report.Abandoned(), "a call that returned in time is not abandoned")
	})
}
