package breaker

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

// Issue 14, item 1: math.MaxInt64 in every duration field of Config means
// "as long as possible": New accepts it and nothing wraps around.

const forever = time.Duration(math.MaxInt64)

const year = 365 * 24 * time.Hour

// durationModes are the paths a breaker can take, for the overflow tests.
var durationModes = map[string]Config{
	"fast":     {RequestTimeout: -1},
	"timed":    {},
	"listener": {RequestTimeout: -1, OnEvent: func(bulwark.Event) {}},
}

func TestResetTimeoutForever(t *testing.T) {
	for name, base := range durationModes {
		for _, ratio := range []bool{false, true} {
			cfg := base
			cfg.ResetTimeout = forever
			if ratio {
				cfg.FailureRatio, cfg.MinimumThroughput = 1, 1
			} else {
				cfg.FailureThreshold = 1
			}
			t.Run(name+map[bool]string{false: "/consecutive", true: "/ratio"}[ratio], func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b := newBreakerT(t, cfg)
					fail(b)
					require.Equal(t, Open, b.State())
					opened := time.Now()
					st := b.Stats()
					assert.True(t, st.NextAttempt.After(opened.Add(290*year)), "next attempt %v is ~292 years away, not in the past", st.NextAttempt)
					for range 10 {
						time.Sleep(10 * year)
						synctest.Wait()
						ran, err := call(b, nil)
						require.False(t, ran, "never half-opens: %v after opening", time.Since(opened))
						require.ErrorIs(t, err, ErrOpen)
					}
					assert.Equal(t, Open, b.State())
					var g Group
					require.NoError(t, g.Configure("svc", cfg))
					br := g.Get("svc")
					fail(br)
					assert.Contains(t, g.Summary(), "in 2562047h", "the summary shows the saturated wait")
					b.Reset()
					require.NoError(t, ok(b), "Reset still recovers")
				})
			})
		}
	}
}

func TestResetTimeoutForeverByReconfigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group
		require.NoError(t, g.Configure("svc", Config{FailureThreshold: 1}))
		b := g.Get("svc")
		fail(b)
		require.NoError(t, g.Configure("svc", Config{FailureThreshold: 1, ResetTimeout: forever}))
		time.Sleep(50 * year)
		synctest.Wait()
		ran, err := call(b, nil)
		assert.False(t, ran)
		assert.ErrorIs(t, err, ErrOpen)
	})
}

func TestRequestTimeoutForever(t *testing.T) {
	for _, cfg := range []Config{
		{RequestTimeout: forever},
		{RequestTimeout: forever, OnEvent: func(bulwark.Event) {}},
		{RequestTimeout: forever, FailureRatio: 0.5, MinimumThroughput: 1},
		{RequestTimeout: forever, AbandonOnTimeout: true},
	} {
		synctest.Test(t, func(t *testing.T) {
			b := newBreakerT(t, cfg)
			fn := Middleware[int](b)(func(ctx context.Context) (int, error) {
				require.NoError(t, ctx.Err(), "no instant timeout")
				if dl, ok := ctx.Deadline(); ok {
					assert.True(t, dl.After(time.Now().Add(290*year)), "deadline %v", dl)
				}
				time.Sleep(year) // a very slow call is not cut off
				return 7, ctx.Err()
			})
			for range 3 {
				v, err := fn(context.Background())
				require.NoError(t, err)
				assert.Equal(t, 7, v)
			}
			st := b.Stats()
			assert.Equal(t, int64(3), st.Successes)
			assert.Zero(t, st.Timeouts)
			assert.Equal(t, Closed, st.State)
		})
	}
}

func TestFailureWindowForever(t *testing.T) {
	for name, base := range durationModes {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := base
				cfg.FailureThreshold, cfg.FailureWindow = 3, forever
				b := newBreakerT(t, cfg)
				for i := range 3 {
					require.Equal(t, Closed, b.State(), "after %d failures", i)
					fail(b)
					time.Sleep(40 * year) // failures never age out
				}
				assert.Equal(t, Open, b.State(), "three failures 80 years apart are still consecutive")
			})
		})
	}
}

func TestSamplingWindowForever(t *testing.T) {
	for name, base := range durationModes {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := base
				cfg.FailureRatio, cfg.MinimumThroughput, cfg.SamplingWindow = 0.5, 4, forever
				cfg.SuccessThreshold = 1
				b := newBreakerT(t, cfg)
				// Calls 0, 20, 40 and 60 years in: slots of 29 years, all
				// inside the window.
				for i, err := range []error{nil, errBoom, nil} {
					call(b, err)
					require.Equal(t, Closed, b.State(), "call %d", i)
					time.Sleep(20 * year)
				}
				fail(b)
				assert.Equal(t, Open, b.State(), "2 failures in 4 calls over 60 years reach the ratio")
				time.Sleep(30 * time.Second)
				synctest.Wait()
				require.NoError(t, ok(b))
				assert.Equal(t, Closed, b.State())
				fail(b)
				assert.Equal(t, Closed, b.State(), "the window started afresh when the circuit closed")
			})
		})
	}
}

func TestEveryDurationForever(t *testing.T) {
	for _, cfg := range []Config{
		{FailureWindow: forever, ResetTimeout: forever, RequestTimeout: forever, FailureThreshold: 1},
		{SamplingWindow: forever, ResetTimeout: forever, RequestTimeout: forever, FailureRatio: 0.3, MinimumThroughput: 3},
	} {
		synctest.Test(t, func(t *testing.T) {
			cfg.OnEvent = func(bulwark.Event) {} // every call is measured: LastSuccess is exact
			b := newBreakerT(t, cfg)
			require.NoError(t, ok(b))
			time.Sleep(100 * year)
			require.NoError(t, ok(b))
			okAt := time.Now()
			fail(b)
			assert.Equal(t, Open, b.State())
			time.Sleep(200 * year)
			synctest.Wait()
			ran, err := call(b, nil)
			assert.False(t, ran)
			assert.ErrorIs(t, err, ErrOpen)
			st := b.Stats()
			assert.Equal(t, okAt, st.LastSuccess, "times a century after creation are kept exactly")
			assert.True(t, st.NextAttempt.After(okAt.Add(290*year)))
		})
	}
}

func TestCoreResetTimeoutSaturates(t *testing.T) {
	s := mustSettings(t, Config{FailureThreshold: 1, ResetTimeout: forever})
	now := time.Now()
	var c core
	c.record(s, now, 0, false, failure, ratioCounts{})
	require.Equal(t, Open, c.state)
	assert.True(t, c.nextAttempt.After(now), "now + MaxInt64 must not wrap into the past")
	_, _, err := c.allow(s, now.Add(200*year))
	assert.ErrorIs(t, err, ErrOpen)
}

func TestSinceEpochSaturates(t *testing.T) {
	b := newBreakerT(t, Config{})
	assert.Equal(t, int64(math.MaxInt64), b.sinceEpoch(b.epoch.Add(forever)), "no wrap to a negative 'never'")
}
