package pipeline_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// sampledConfig is a breaker without a request timeout (its fast path)
// that opens after 3 failures, inside one retry.
func sampledConfig() pipeline.Config {
	return pipeline.Config{
		Breaker: &breaker.Config{RequestTimeout: -1, FailureThreshold: 3, ResetTimeout: time.Minute},
		Retry:   &retry.Config{MaxAttempts: 2, NoWait: true},
	}
}

// slowOK succeeds after 5ms of the bubble's clock.
func slowOK(context.Context) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return 1, nil
}

// sampledCount checks that events holds only sampled request:success
// events of executor "notion" that took 5ms, and returns how many.
func sampledCount(t *testing.T, events []bulwark.Event) int {
	t.Helper()
	n := 0
	for _, ev := range events {
		if ev.Kind != bulwark.RequestSuccess {
			continue
		}
		n++
		assert.True(t, ev.Sampled)
		assert.Equal(t, "notion", ev.Executor)
		assert.Equal(t, "get", ev.Operation)
		assert.Equal(t, 5*time.Millisecond, ev.Duration)
	}
	return n
}

// TestSubscribeSampledGetsTheSampleAndEveryOtherEvent makes 6400
// successes, then opens the circuit and has calls rejected: a sampled
// subscriber gets about one success in 64 (at most 100, at least 100
// minus the few stripes one goroutine can land on), each marked Sampled
// with its duration and operation, never a request:rejected, and every
// retry and circuit event; Stats counts every call. A subscriber that got
// every success, or none, or the rejections, fails.
func TestSubscribeSampledGetsTheSampleAndEveryOtherEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, sampledConfig())
		var sampled recorder
		defer s.SubscribeSampled(sampled.listen)()
		ctx := t.Context()
		for range 6400 {
			_, err := pipeline.Do(ctx, s, "notion", slowOK, pipeline.Operation("get"))
			require.NoError(t, err)
		}
		n := sampledCount(t, sampled.all())
		assert.GreaterOrEqual(t, n, 95)
		assert.LessOrEqual(t, n, 100)

		for range 3 { // each: two attempts, one retry:attempt, one request:failure
			_, err := pipeline.Do(ctx, s, "notion", func(context.Context) (int, error) { return 0, errDown })
			require.ErrorIs(t, err, errDown)
		}
		for range 4 {
			_, err := pipeline.Do(ctx, s, "notion", slowOK)
			require.ErrorIs(t, err, breaker.ErrOpen)
		}
		assert.Equal(t, 3, sampled.count("notion", bulwark.RetryAttempt), "retry events in full")
		assert.Equal(t, 3, sampled.count("notion", bulwark.RetryExhausted))
		assert.Equal(t, 1, sampled.count("notion", bulwark.CircuitOpened))
		assert.Zero(t, sampled.count("notion", bulwark.RequestRejected))
		for _, ev := range sampled.all() {
			if ev.Kind == bulwark.RequestFailure {
				assert.True(t, ev.Sampled, "only sampled failures")
			}
		}
		st := s.Stats()["notion"].Breaker
		assert.EqualValues(t, 6400, st.Successes)
		assert.EqualValues(t, 3, st.Failures)
		assert.EqualValues(t, 4, st.Rejections)
	})
}

// TestSubscribeSampledBesideAFullSubscriber: with a full subscriber too,
// the full one gets every success and the sampled one exactly those
// marked Sampled; once the full one cancels, the sampled one still gets
// its sample (the breaker is rewired to OnSample) and the full one
// nothing; the circuit's state survives each rewire.
func TestSubscribeSampledBesideAFullSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, sampledConfig())
		ctx := t.Context()
		run := func(n int) {
			for range n {
				_, err := pipeline.Do(ctx, s, "notion", slowOK, pipeline.Operation("get"))
				require.NoError(t, err)
			}
		}
		var sampled, full recorder
		cancelSampled := s.SubscribeSampled(sampled.listen)
		cancelFull := s.Subscribe(full.listen)
		run(640)
		require.Equal(t, 640, full.count("notion", bulwark.RequestSuccess))
		var marked []bulwark.Event
		for _, ev := range full.all() {
			if ev.Sampled {
				marked = append(marked, ev)
			}
		}
		assert.NotEmpty(t, marked)
		assert.Equal(t, marked, sampled.all(), "the sampled subscriber gets the marked events, no others")

		cancelFull()
		before := len(sampled.all())
		run(640)
		assert.Equal(t, 640, full.count("notion", bulwark.RequestSuccess), "nothing after cancel")
		assert.Positive(t, sampledCount(t, sampled.all()[before:]), "the sample goes on through OnSample")

		// Open the circuit, then subscribe and cancel: the rewires keep it open.
		for range 3 {
			_, _ = pipeline.Do(ctx, s, "notion", func(context.Context) (int, error) { return 0, errDown })
		}
		require.Equal(t, breaker.Open, s.Breaker("notion").State())
		cancelFull = s.Subscribe(full.listen)
		cancelFull()
		cancelSampled()
		assert.Equal(t, breaker.Open, s.Breaker("notion").State())
		assert.EqualValues(t, 1280, s.Stats()["notion"].Breaker.Successes)
		n := len(sampled.all())
		_, err := pipeline.Do(ctx, s, "notion", slowOK)
		require.ErrorIs(t, err, breaker.ErrOpen)
		assert.Len(t, sampled.all(), n, "nothing after cancel")
	})
}

// TestSubscribeSampledOwnBreakerListeners: a breaker's own OnSample
// gets the sample with the sampled subscribers; its own OnEvent makes the
// breaker report every call, and the sampled subscriber still gets only
// the marked events.
func TestSubscribeSampledOwnBreakerListeners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var own, ownAll, sampled recorder
		cfg := sampledConfig()
		cfg.Breaker.OnSample = own.listen
		s := newStack(t, cfg)
		defer s.SubscribeSampled(sampled.listen)()
		for range 640 {
			_, err := pipeline.Do(t.Context(), s, "notion", slowOK, pipeline.Operation("get"))
			require.NoError(t, err)
		}
		assert.Positive(t, sampledCount(t, own.all()))
		assert.Equal(t, own.all(), sampled.all())

		cfg.Breaker.OnSample = nil
		cfg.Breaker.OnEvent = ownAll.listen
		require.NoError(t, s.Configure("notion", cfg))
		sampled.mu.Lock()
		sampled.events = nil
		sampled.mu.Unlock()
		for range 640 {
			_, err := pipeline.Do(t.Context(), s, "notion", slowOK, pipeline.Operation("get"))
			require.NoError(t, err)
		}
		assert.Equal(t, 640, ownAll.count("notion", bulwark.RequestSuccess))
		assert.Positive(t, sampledCount(t, sampled.all()))
	})
}

// TestSubscribeSampledConcurrently subscribes and cancels sampled and
// full subscribers while calls run (for the race detector), then checks
// that the counts are exact.
func TestSubscribeSampledConcurrently(t *testing.T) {
	s := newStack(t, sampledConfig())
	ctx := t.Context()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 2000 {
				_, _ = pipeline.Do(ctx, s, "notion", func(context.Context) (int, error) { return 1, nil })
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			a := s.SubscribeSampled(func(bulwark.Event) {})
			if i%2 == 0 {
				s.Subscribe(func(bulwark.Event) {})()
			}
			a()
		}
	})
	wg.Wait()
	assert.EqualValues(t, 8000, s.Stats()["notion"].Breaker.Successes)
}
