package pipeline_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// TestBulkheadRejectionOrdering: a bulkhead rejection is not retried, not
// counted by the breaker, and answered by the fallback under a named key.
// The breaker opens after a single failure and retry would make 3
// attempts, so a rejection that were counted or retried would show.
func TestBulkheadRejectionOrdering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{
			Fallback: &pipeline.FallbackConfig{},
			Breaker:  &breaker.Config{FailureThreshold: 1},
			Retry:    &retry.Config{MaxAttempts: 3, NoWait: true},
			Bulkhead: &bulkhead.Config{MaxConcurrent: 1},
		})
		rec := &recorder{}
		defer s.Subscribe(rec.listen)()
		ctx := t.Context()
		get := pipeline.Operation("get-page")
		require.NoError(t, pipeline.Execute(ctx, s, "notion",
			func(context.Context) (string, error) { return "cached page", nil }, get).Err)

		// One slow call holds the only slot.
		release := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			pipeline.Do(ctx, s, "notion", func(context.Context) (string, error) {
				<-release
				return "slow", nil
			})
		})
		synctest.Wait()

		var ran atomic.Int32
		fn := func(context.Context) (string, error) { ran.Add(1); return "fresh", nil }
		r := pipeline.Execute(ctx, s, "notion", fn, get)
		assert.NoError(t, r.Err)
		assert.Equal(t, "cached page", r.Value, "answered by the fallback")
		assert.True(t, r.FromCache)
		assert.True(t, r.Rejected)

		r = pipeline.Execute(ctx, s, "notion", fn) // names no key: not answered
		assert.ErrorIs(t, r.Err, bulkhead.ErrFull)
		assert.ErrorIs(t, r.Err, bulwark.ErrRejected)
		assert.True(t, r.Rejected)
		assert.Equal(t, "bulkhead notion: full", r.Err.Error())

		close(release)
		wg.Wait()
		assert.Zero(t, ran.Load(), "a refused call never runs")
		st := s.Stats()["notion"]
		require.NotNil(t, st.Bulkhead)
		assert.Equal(t, int64(2), st.Bulkhead.Rejected, "one refusal per call: not retried")
		assert.Equal(t, breaker.Closed, st.Breaker.State, "not counted by the breaker")
		assert.Zero(t, st.Breaker.Failures)
		assert.Zero(t, rec.count("notion", bulwark.RetryAttempt))
		assert.Equal(t, 2, rec.count("notion", bulwark.BulkheadRejected))
		assert.Equal(t, 1, rec.count("notion", bulwark.FallbackUsed))
	})
}

// TestBulkheadHoldsAttemptsNotBackoffs: the bulkhead sits inside retry,
// so a call waiting out its backoff holds no slot, and another call runs
// meanwhile; every attempt takes a slot.
func TestBulkheadHoldsAttemptsNotBackoffs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{
			Retry:    &retry.Config{MaxAttempts: 2, InitialInterval: time.Second, NoJitter: true},
			Bulkhead: &bulkhead.Config{MaxConcurrent: 1},
		})
		ctx := t.Context()
		var first atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			r := pipeline.Execute(ctx, s, "notion", func(context.Context) (int, error) {
				if first.CompareAndSwap(false, true) {
					return 0, errDown
				}
				return 1, nil
			})
			assert.NoError(t, r.Err)
			assert.Equal(t, 2, r.Attempts)
		})
		synctest.Wait() // the first attempt failed; the call waits 1s
		r := pipeline.Execute(ctx, s, "notion", func(context.Context) (int, error) { return 2, nil })
		assert.NoError(t, r.Err, "the backoff holds no slot")
		wg.Wait()
		assert.Equal(t, int64(3), s.Stats()["notion"].Bulkhead.Admitted, "a slot per attempt")
	})
}

// TestRetryAfterPausesExecutorLimiter: an attempt that fails with a
// Retry-After pauses the executor's rate limiter, so that another caller
// of the executor waits too (not only the one that got the 429); a caller
// that cannot wait that long is refused at once; the pause is capped at
// the retry layer's MaxRetryAfter.
func TestRetryAfterPausesExecutorLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{
			Retry:     &retry.Config{MaxAttempts: 2, NoWait: true, MaxRetryAfter: time.Minute},
			RateLimit: &ratelimit.Config{Rate: 1000, Burst: 100},
		})
		rec := &recorder{}
		defer s.Subscribe(rec.listen)()
		ctx := t.Context()
		start := time.Now()
		var once atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			r := pipeline.Execute(ctx, s, "notion", func(context.Context) (int, error) {
				if once.CompareAndSwap(false, true) {
					return 0, retry.After(errors.New("429 Too Many Requests"), 2*time.Second)
				}
				return 1, nil
			})
			assert.NoError(t, r.Err)
			assert.Equal(t, 2*time.Second, time.Since(start))
		})
		synctest.Wait()
		assert.Equal(t, start.Add(2*time.Second), s.Stats()["notion"].RateLimit.PausedUntil)
		assert.Equal(t, 1, rec.count("notion", bulwark.RateLimitPaused))

		// Another caller, which never saw the 429, waits for the pause.
		var ranAt time.Time
		_, err := pipeline.Do(ctx, s, "notion", func(context.Context) (int, error) { ranAt = time.Now(); return 2, nil })
		require.NoError(t, err)
		assert.Equal(t, start.Add(2*time.Second), ranAt)
		wg.Wait()

		// A 10-minute Retry-After pauses for MaxRetryAfter (1m); a caller
		// with 5s left is refused at once, without running.
		_, err = pipeline.Do(ctx, s, "notion", func(context.Context) (int, error) {
			return 0, retry.After(errDown, 10*time.Minute)
		})
		assert.ErrorIs(t, err, retry.ErrRetryAfterTooLong)
		now := time.Now()
		assert.Equal(t, now.Add(time.Minute), s.Stats()["notion"].RateLimit.PausedUntil)
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = pipeline.Do(short, s, "notion", func(context.Context) (int, error) { t.Error("ran"); return 0, nil })
		assert.ErrorIs(t, err, ratelimit.ErrPaused)
		assert.ErrorIs(t, err, bulwark.ErrRejected)
		assert.Equal(t, now, time.Now(), "refused at once")
	})
}

// TestRateLimitSpacesAttempts: the limiter sits inside retry, so every
// attempt, retries included, takes a token: 3 calls of 2 attempts each
// at 10/s, burst 1, reach the service exactly 100ms apart.
func TestRateLimitSpacesAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{
			Retry:     &retry.Config{MaxAttempts: 2, NoWait: true},
			RateLimit: &ratelimit.Config{Rate: 10},
		})
		start := time.Now()
		var seen []time.Duration
		for range 3 {
			var n int
			_, err := pipeline.Do(t.Context(), s, "notion", func(context.Context) (int, error) {
				seen = append(seen, time.Since(start))
				if n++; n == 1 {
					return 0, errDown
				}
				return n, nil
			})
			require.NoError(t, err)
		}
		ms := time.Millisecond
		assert.Equal(t, []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms, 500 * ms}, seen)
		assert.Equal(t, int64(6), s.Stats()["notion"].RateLimit.Admitted)
	})
}

// TestAttemptTimeout: each attempt is bounded on its own; a timed-out
// attempt is retried (its context's cause is ErrAttemptTimeout), and the
// breaker's RequestTimeout still bounds the whole call.
func TestAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{
			Breaker:        &breaker.Config{RequestTimeout: 10 * time.Second},
			Retry:          &retry.Config{MaxAttempts: 3, NoWait: true},
			AttemptTimeout: time.Second,
		})
		ctx := t.Context()
		start := time.Now()
		var n int
		r := pipeline.Execute(ctx, s, "notion", func(ctx context.Context) (int, error) {
			if n++; n < 3 {
				<-ctx.Done()
				assert.Equal(t, pipeline.ErrAttemptTimeout, context.Cause(ctx))
				return 0, ctx.Err()
			}
			return 42, nil
		})
		require.NoError(t, r.Err)
		assert.Equal(t, 42, r.Value)
		assert.Equal(t, 3, r.Attempts, "timed-out attempts are retried")
		assert.Equal(t, 2*time.Second, time.Since(start))

		// Every attempt times out: the error says so, and the breaker
		// counts one failure for the call.
		start = time.Now()
		hang := func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }
		r = pipeline.Execute(ctx, s, "notion", hang)
		assert.ErrorIs(t, r.Err, pipeline.ErrAttemptTimeout)
		assert.ErrorIs(t, r.Err, context.DeadlineExceeded)
		assert.ErrorIs(t, r.Err, retry.ErrExhausted)
		assert.Contains(t, r.Err.Error(), "pipeline: attempt timed out after 1s")
		assert.Equal(t, 3*time.Second, time.Since(start))
		assert.Equal(t, int64(1), s.Stats()["notion"].Breaker.Failures)

		// The request timeout (2.5s) ends the call in its third attempt.
		require.NoError(t, s.Configure("slack", pipeline.Config{
			Breaker:        &breaker.Config{RequestTimeout: 2500 * time.Millisecond},
			Retry:          &retry.Config{MaxAttempts: 5, NoWait: true},
			AttemptTimeout: time.Second,
		}))
		start = time.Now()
		r = pipeline.Execute(ctx, s, "slack", hang)
		assert.ErrorIs(t, r.Err, breaker.ErrTimeout)
		assert.Equal(t, 2500*time.Millisecond, time.Since(start))
		assert.Equal(t, 3, r.Attempts)

		// math.MaxInt64 means no per-attempt timeout, like 0.
		require.NoError(t, s.Configure("github", pipeline.Config{AttemptTimeout: math.MaxInt64}))
		_, err := pipeline.Do(ctx, s, "github", func(ctx context.Context) (int, error) {
			_, has := ctx.Deadline()
			assert.False(t, has)
			return 1, nil
		})
		require.NoError(t, err)
	})
}

// TestRetryBudgetPerExecutor: each executor has its own retry budget;
// when it is spent, a failed call is not retried and says why; a
// subscriber arriving (which rebuilds the layers' listeners) keeps the
// budget's counts.
func TestRetryBudgetPerExecutor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{Retry: &retry.Config{
			MaxAttempts: 2, NoWait: true,
			Budget: &retry.Budget{Ratio: 0.01, MinPerSecond: 0.15, Window: 10 * time.Second}, // 1.5 + 0.01 × calls: 2 retries
		}})
		ctx := t.Context()
		fail := func(context.Context) (int, error) { return 0, errDown }
		for range 2 {
			assert.Equal(t, 2, pipeline.Execute(ctx, s, "notion", fail).Attempts)
		}
		defer s.Subscribe(func(bulwark.Event) {})()
		r := pipeline.Execute(ctx, s, "notion", fail)
		assert.Equal(t, 1, r.Attempts)
		assert.ErrorIs(t, r.Err, retry.ErrBudgetExhausted)
		assert.ErrorIs(t, r.Err, errDown)
		assert.Equal(t, 2, pipeline.Execute(ctx, s, "slack", fail).Attempts, "another executor has its own budget")

		st := s.Stats()
		require.NotNil(t, st["notion"].RetryBudget)
		assert.Equal(t, retry.BudgetStats{Calls: 3, Retries: 2, Refused: 1}, *st["notion"].RetryBudget)
		assert.Equal(t, retry.BudgetStats{Calls: 1, Retries: 1}, *st["slack"].RetryBudget)
	})
}

// TestLoadLayerConfigErrors: a bad field of a new layer is an error naming
// the layer and the field, from New and from Configure.
func TestLoadLayerConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  pipeline.Config
		want string
	}{
		"bulkhead":        {pipeline.Config{Bulkhead: &bulkhead.Config{MaxConcurrent: -1}}, "Bulkhead: bulkhead: invalid Config.MaxConcurrent"},
		"ratelimit":       {pipeline.Config{RateLimit: &ratelimit.Config{}}, "RateLimit: ratelimit: invalid Config.Rate"},
		"attempt timeout": {pipeline.Config{AttemptTimeout: -time.Second}, "AttemptTimeout: AttemptTimeout is -1s"},
		"budget":          {pipeline.Config{Retry: &retry.Config{Budget: &retry.Budget{Ratio: -1}}}, "Retry: retry: invalid config: Budget.Ratio"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pipeline.New(tc.cfg)
			assert.ErrorIs(t, err, pipeline.ErrInvalid)
			assert.ErrorContains(t, err, tc.want)
			s := newStack(t, pipeline.Config{})
			err = s.Configure("notion", tc.cfg)
			assert.ErrorIs(t, err, pipeline.ErrInvalid)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// TestSummaryShowsLoadLayers: with a bulkhead or a limiter anywhere, the
// summary adds their columns; a dash marks an executor without them.
func TestSummaryShowsLoadLayers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{})
		require.NoError(t, s.Configure("notion", pipeline.Config{
			Bulkhead:  &bulkhead.Config{MaxConcurrent: 2},
			RateLimit: &ratelimit.Config{Rate: 1, MaxWait: -1},
		}))
		ctx := t.Context()
		ok := func(context.Context) (int, error) { return 1, nil }
		pipeline.Do(ctx, s, "notion", ok)
		_, err := pipeline.Do(ctx, s, "notion", ok)
		require.ErrorIs(t, err, ratelimit.ErrLimited)
		s.Stats() // no effect
		pipeline.Do(ctx, s, "slack", ok)
		want := "" +
			"EXECUTOR  STATE  SUCCESS RATE  CALLS  FAILURES  REJECTIONS  OPENED  NEXT ATTEMPT  FROM CACHE  IN FLIGHT  WAITING  FULL  LIMITED  PAUSED\n" +
			"notion    -      -             -      -         -           -       -             -           0/2        0        0     1        no\n" +
			"slack     -      -             -      -         -           -       -             -           -          -        -     -        -\n"
		assert.Equal(t, want, s.Summary())
	})
}

// TestLoadLayersReleaseOnPanic: a panic in fn reaches the caller, through
// Do and through Middleware, and leaves no bulkhead slot taken (the next
// calls get the only slot) and no attempt timer running (goleak).
func TestLoadLayersReleaseOnPanic(t *testing.T) {
	s := newStack(t, pipeline.Config{
		Retry:          &retry.Config{NoWait: true},
		Bulkhead:       &bulkhead.Config{MaxConcurrent: 1},
		RateLimit:      &ratelimit.Config{Rate: math.Inf(1)},
		AttemptTimeout: time.Minute,
	})
	ctx := t.Context()
	boom := func(context.Context) (int, error) { panic("boom") }
	assert.PanicsWithValue(t, "boom", func() { pipeline.Do(ctx, s, "notion", boom) })
	assert.PanicsWithValue(t, "boom", func() { pipeline.Middleware[int](s, "notion")(boom)(ctx) })
	assert.Zero(t, s.Stats()["notion"].Bulkhead.InFlight)
	v, err := pipeline.Middleware[int](s, "notion")(func(context.Context) (int, error) { return 7, nil })(ctx)
	require.NoError(t, err)
	assert.Equal(t, 7, v)
}

// TestLoadLayersKeptWhenListenersChange: subscribing rebuilds the layers'
// listeners but keeps each executor's bulkhead and limiter (their counts
// go on), and their events then reach the subscriber; so does a Configure
// that leaves their limits as they were; one that changes them starts new
// ones.
func TestLoadLayersKeptWhenListenersChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{
			Bulkhead:  &bulkhead.Config{MaxConcurrent: 1},
			RateLimit: &ratelimit.Config{Rate: 1, MaxWait: -1},
		})
		ctx := t.Context()
		ok := func(context.Context) (int, error) { return 1, nil }
		require.NoError(t, pipeline.Execute(ctx, s, "notion", ok).Err)
		rec := &recorder{}
		cancel := s.Subscribe(rec.listen)
		r := pipeline.Execute(ctx, s, "notion", ok)
		assert.ErrorIs(t, r.Err, ratelimit.ErrLimited, "the bucket's token was spent before the subscriber came")
		cancel()
		st := s.Stats()["notion"]
		assert.Equal(t, int64(2), st.Bulkhead.Admitted)
		assert.Equal(t, int64(1), st.RateLimit.Rejected)
		assert.Equal(t, 1, rec.count("notion", bulwark.RateLimitRejected))

		require.NoError(t, s.Configure("notion", pipeline.Config{
			Bulkhead:  &bulkhead.Config{MaxConcurrent: 1},
			RateLimit: &ratelimit.Config{Rate: 1, MaxWait: -1},
		}))
		r = pipeline.Execute(ctx, s, "notion", ok)
		assert.ErrorIs(t, r.Err, ratelimit.ErrLimited, "the same limits: the same bucket, still empty")
		assert.Equal(t, int64(3), s.Stats()["notion"].Bulkhead.Admitted)

		require.NoError(t, s.Configure("notion", pipeline.Config{
			Bulkhead:  &bulkhead.Config{MaxConcurrent: 2},
			RateLimit: &ratelimit.Config{Rate: 2, MaxWait: -1},
		}))
		require.NoError(t, pipeline.Execute(ctx, s, "notion", ok).Err, "new limits: a new limiter, with a full bucket")
		assert.Equal(t, int64(1), s.Stats()["notion"].Bulkhead.Admitted)
	})
}

// TestConfigureSameLimitsKeepsInFlight: reconfiguring an executor with
// the limits it has, while its bulkhead is full, does not open a second
// set of slots (a new bulkhead would not count the calls in flight), and
// a new OnEvent of the same limits receives the kept bulkhead's events.
func TestConfigureSameLimitsKeepsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{Bulkhead: &bulkhead.Config{MaxConcurrent: 2}})
		ctx := t.Context()
		release := make(chan struct{})
		block := func(context.Context) (int, error) { <-release; return 1, nil }
		for range 2 {
			go pipeline.Execute(ctx, s, "notion", block)
		}
		synctest.Wait()
		require.Equal(t, 2, s.Stats()["notion"].Bulkhead.InFlight)

		var got []bulwark.EventKind
		require.NoError(t, s.Configure("notion", pipeline.Config{Bulkhead: &bulkhead.Config{
			MaxConcurrent: 2,
			OnEvent:       func(ev bulwark.Event) { got = append(got, ev.Kind) },
		}}))
		r := pipeline.Execute(ctx, s, "notion", func(context.Context) (int, error) { return 1, nil })
		assert.ErrorIs(t, r.Err, bulkhead.ErrFull, "the two calls in flight still hold both slots")
		assert.Equal(t, []bulwark.EventKind{bulwark.BulkheadRejected}, got, "the new OnEvent hears the kept bulkhead")
		close(release)
		synctest.Wait()
		assert.Zero(t, s.Stats()["notion"].Bulkhead.InFlight)
	})
}

// TestPresetsLeaveLoadLayersOff: the seed's guidelines give no number for
// the load layers, so the presets leave them off.
func TestPresetsLeaveLoadLayersOff(t *testing.T) {
	for name, cfg := range map[string]pipeline.Config{
		"Reliable": pipeline.Reliable(), "Unreliable": pipeline.Unreliable(), "Critical": pipeline.Critical(),
	} {
		assert.Nil(t, cfg.Bulkhead, name)
		assert.Nil(t, cfg.RateLimit, name)
		assert.Zero(t, cfg.AttemptTimeout, name)
		require.NotNil(t, cfg.Retry, name)
		assert.Nil(t, cfg.Retry.Budget, name)
	}
}

// TestHTTP429PausesExecutorLimiter: a 429 turned into an error by
// retry.FromResponse (as bulwarkhttp does) carries its Retry-After, which
// pauses the executor's limiter for the seconds it gives.
func TestHTTP429PausesExecutorLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{RateLimit: &ratelimit.Config{Rate: math.Inf(1)}})
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3"}}}
		_, err := pipeline.Do(t.Context(), s, "notion", func(context.Context) (int, error) {
			return 0, retry.FromResponse(resp)
		})
		require.Error(t, err)
		assert.Equal(t, time.Now().Add(3*time.Second), s.Stats()["notion"].RateLimit.PausedUntil)
	})
}

// sliceBackend is a Backend whose values cannot be compared with ==.
type sliceBackend struct{ _ []int }

func (sliceBackend) Reserve(context.Context, time.Time, time.Duration) ratelimit.Reservation {
	return ratelimit.Reservation{OK: true}
}

// TestConfigureBackendNotComparable: a Configure with a Backend that ==
// cannot compare builds a new limiter instead of panicking; the same
// pointer Backend keeps the limiter.
func TestConfigureBackendNotComparable(t *testing.T) {
	s := newStack(t, pipeline.Config{RateLimit: &ratelimit.Config{Backend: sliceBackend{}}})
	ok := func(context.Context) (int, error) { return 1, nil }
	require.NoError(t, pipeline.Execute(t.Context(), s, "notion", ok).Err)
	require.NotPanics(t, func() {
		require.NoError(t, s.Configure("notion", pipeline.Config{RateLimit: &ratelimit.Config{Backend: sliceBackend{}}}))
	})
	assert.Zero(t, s.Stats()["notion"].RateLimit.Admitted, "a new limiter")

	tb, err := ratelimit.NewTokenBucket(1, 1)
	require.NoError(t, err)
	require.NoError(t, s.Configure("notion", pipeline.Config{RateLimit: &ratelimit.Config{Backend: tb}}))
	require.NoError(t, pipeline.Execute(t.Context(), s, "notion", ok).Err)
	require.NoError(t, s.Configure("notion", pipeline.Config{RateLimit: &ratelimit.Config{Backend: tb}}))
	assert.Equal(t, int64(1), s.Stats()["notion"].RateLimit.Admitted, "the same bucket: the same limiter")
}

// TestConfigureSameBudgetKeepsCounts: reconfiguring an executor with the
// same retry Budget keeps the window's counts (a fresh budget would grant
// new retries mid-outage); another Budget starts at zero.
func TestConfigureSameBudgetKeepsCounts(t *testing.T) {
	cfg := func(ratio float64) pipeline.Config {
		return pipeline.Config{Retry: &retry.Config{MaxAttempts: 2, NoWait: true, Budget: &retry.Budget{Ratio: ratio}}}
	}
	s := newStack(t, cfg(0.1))
	boom := func(context.Context) (int, error) { return 0, errors.New("boom") }
	for range 3 {
		pipeline.Execute(t.Context(), s, "notion", boom)
	}
	require.Equal(t, int64(3), s.Stats()["notion"].RetryBudget.Calls)
	require.NoError(t, s.Configure("notion", cfg(0.1)))
	assert.Equal(t, int64(3), s.Stats()["notion"].RetryBudget.Calls, "the same budget")
	require.NoError(t, s.Configure("notion", cfg(0.2)))
	assert.Zero(t, s.Stats()["notion"].RetryBudget.Calls, "another budget")
}

// TestRefusedRetryCountsTheFailure: a call whose first attempt reached the
// service and failed, and whose retry the bulkhead then refused (another
// call held its slot), is a failure for the breaker above — with the
// service's error — not a rejection it would ignore: a failing service
// under load still opens its circuit.
func TestRefusedRetryCountsTheFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{
			Breaker:  &breaker.Config{},
			Retry:    &retry.Config{MaxAttempts: 3, InitialInterval: 100 * time.Millisecond, NoJitter: true},
			Bulkhead: &bulkhead.Config{MaxConcurrent: 1},
		})
		outage := errors.New("503")
		release := make(chan struct{})
		time.AfterFunc(50*time.Millisecond, func() {
			go pipeline.Execute(t.Context(), s, "notion", func(context.Context) (int, error) { <-release; return 1, nil })
		})
		r := pipeline.Execute(t.Context(), s, "notion", func(context.Context) (int, error) { return 0, outage })
		close(release)
		synctest.Wait()
		assert.ErrorIs(t, r.Err, outage)
		assert.ErrorIs(t, r.Err, retry.ErrRetryRefused)
		assert.NotErrorIs(t, r.Err, bulwark.ErrRejected)
		assert.False(t, r.Rejected)
		assert.Equal(t, 1, r.Attempts)
		st := s.Stats()["notion"]
		assert.Equal(t, int64(1), st.Breaker.Failures, "the service's failure is counted")
		assert.Equal(t, int64(1), st.Bulkhead.Rejected)
	})
}
