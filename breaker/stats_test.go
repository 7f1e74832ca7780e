package breaker

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/bulwark-go/bulwark"
)

func TestStatsSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A listener makes every call measured.
		b := newBreakerT(t, Config{FailureThreshold: 3, OnEvent: func(bulwark.Event) {}})
		c := newClock()
		st := b.Stats()
		assert.Equal(t, Stats{State: Closed, LastStateChange: c.start}, st, "a new breaker")

		sleepy := func(d time.Duration, err error) {
			Do(context.Background(), b, func(context.Context) (int, error) {
				time.Sleep(d)
				return 0, err
			})
		}
		sleepy(100*time.Millisecond, nil)
		sleepy(300*time.Millisecond, nil)
		sleepy(200*time.Millisecond, errBoom)
		sleepy(400*time.Millisecond, nil)
		st = b.Stats()
		assert.Equal(t, int64(4), st.Total)
		assert.Equal(t, int64(3), st.Successes)
		assert.Equal(t, int64(1), st.Failures)
		assert.Equal(t, int64(1), st.ConsecutiveSuccesses)
		assert.Zero(t, st.ConsecutiveFailures)
		assert.Equal(t, 250*time.Millisecond, st.MeanLatency)
		assert.Equal(t, c.start.Add(600*time.Millisecond), st.LastFailure)
		assert.Equal(t, c.start.Add(time.Second), st.LastSuccess)
		assert.Equal(t, c.start, st.LastStateChange)

		for range 3 {
			fail(b)
		}
		fail(b) // rejected
		st = b.Stats()
		assert.Equal(t, Open, st.State)
		assert.Equal(t, int64(3), st.ConsecutiveFailures)
		assert.Zero(t, st.ConsecutiveSuccesses)
		assert.Equal(t, int64(1), st.Rejections)
		assert.Equal(t, int64(8), st.Total)
		assert.Equal(t, int64(1), st.TimesOpened)
		assert.Equal(t, c.start.Add(time.Second), st.LastStateChange)
		assert.Equal(t, c.start.Add(31*time.Second), st.NextAttempt)
	})
}

func TestStatsLatencySampledOnTheFastPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{RequestTimeout: -1})
		for range 1000 {
			Do(context.Background(), b, func(context.Context) (int, error) {
				time.Sleep(time.Millisecond)
				return 0, nil
			})
		}
		st := b.Stats()
		assert.Equal(t, int64(1000), st.Successes)
		assert.Equal(t, time.Millisecond, st.MeanLatency, "sampled calls give the mean")
		tot := b.counters.total()
		assert.Less(t, tot.latencyN, int64(100), "only a sample of calls is timed")
		assert.Positive(t, tot.latencyN)
		// LastSuccess is exact for the first success and refreshed by the
		// samples: it trails the last call by less than a sample period.
		assert.WithinDuration(t, time.Now(), st.LastSuccess, 64*time.Millisecond)
	})
}

// The fast path's sampled call (doSampled) measures failures and panics as
// it measures successes, so that the sample is not biased.
func TestStatsSampledCallMeasuresEveryOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{RequestTimeout: -1, FailureThreshold: 10})
		c := newClock()
		ctx := context.Background()
		sampled := func(d time.Duration, err error, panicValue any) {
			doSampled(ctx, b, func(context.Context) (int, error) {
				time.Sleep(d)
				if panicValue != nil {
					panic(panicValue)
				}
				return 1, err
			}, b.word.Load(), b.pick())
		}
		sampled(100*time.Millisecond, nil, nil)
		sampled(200*time.Millisecond, errBoom, nil)
		func() {
			defer func() { assert.Equal(t, "sampled", recover(), "the panic goes on unchanged") }()
			sampled(600*time.Millisecond, nil, "sampled")
		}()
		st := b.Stats()
		assert.Equal(t, int64(1), st.Successes)
		assert.Equal(t, int64(2), st.Failures, "the error and the panic")
		assert.Equal(t, int64(2), st.ConsecutiveFailures)
		assert.Equal(t, 300*time.Millisecond, st.MeanLatency, "all three calls measured")
		assert.Equal(t, c.start.Add(100*time.Millisecond), st.LastSuccess)
		assert.Equal(t, c.start.Add(900*time.Millisecond), st.LastFailure)

		// A sampled success after failures clears the run exactly.
		sampled(100*time.Millisecond, nil, nil)
		st = b.Stats()
		assert.Zero(t, st.ConsecutiveFailures)
		assert.Equal(t, c.start.Add(time.Second), st.LastSuccess)
	})
}
