package breaker

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

// oneStripe puts every goroutine of b on one stripe, so that the sample
// (one call in 64 by the stripe's success count) is deterministic.
func oneStripe(b *Breaker) { b.counters = stripes{s: make([]stripe, 1), shift: 64} }

type sampleKey struct{}

// sampleConfigs are the paths a CLOSED call can take: the fast path, and
// the slow path for each reason to take it.
func sampleConfigs(onSample, onEvent bulwark.Listener) map[string]Config {
	return map[string]Config{
		"fast path":        {RequestTimeout: -1, OnSample: onSample},
		"request timeout":  {RequestTimeout: time.Hour, OnSample: onSample},
		"ratio mode":       {RequestTimeout: -1, FailureRatio: 0.5, MinimumThroughput: 100, OnSample: onSample},
		"OnEvent set too":  {RequestTimeout: -1, OnSample: onSample, OnEvent: onEvent},
		"timeout+OnEvent":  {OnSample: onSample, OnEvent: onEvent},
		"abandon (Do)":     {AbandonOnTimeout: true, OnSample: onSample},
		"ratio+OnEvent":    {FailureRatio: 0.5, MinimumThroughput: 100, OnSample: onSample, OnEvent: onEvent},
		"fast path+Logger": {RequestTimeout: -1, OnSample: onSample, Logger: slog.New(slog.DiscardHandler)},
	}
}

// TestOnSampleGetsOneSuccessIn64 runs 640 successes, each taking 10ms of
// the bubble's clock, on every path: OnSample gets exactly the 10 calls
// made when the stripe's count was 63 mod 64, marked Sampled, with their
// duration and context; a full OnEvent listener gets all 640 with the same
// 10 marked. A sample rate that changed with the path, a missing mark or
// a duration from the wrong clock fails.
func TestOnSampleGetsOneSuccessIn64(t *testing.T) {
	for name := range sampleConfigs(nil, nil) {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sample, full recorder
				b := newBreakerT(t, sampleConfigs(sample.listen, full.listen)[name])
				oneStripe(b)
				ctx := context.WithValue(context.Background(), sampleKey{}, "call")
				for range 640 {
					_, err := Do(ctx, b, func(context.Context) (int, error) {
						time.Sleep(10 * time.Millisecond)
						return 1, nil
					})
					require.NoError(t, err)
				}
				got := sample.all()
				require.Len(t, got, 10)
				for _, ev := range got {
					assert.Equal(t, bulwark.RequestSuccess, ev.Kind)
					assert.True(t, ev.Sampled)
					assert.Equal(t, "svc", ev.Executor)
					assert.Equal(t, 10*time.Millisecond, ev.Duration)
					assert.Equal(t, "call", ev.Context.Value(sampleKey{}))
					assert.False(t, ev.Time.IsZero())
				}
				st := b.Stats()
				assert.EqualValues(t, 640, st.Successes, "the counts stay exact")
				assert.Equal(t, 10*time.Millisecond, st.MeanLatency)
				if b.set.Load().onEvent == nil {
					assert.Empty(t, full.all())
					return
				}
				all := full.all()
				require.Len(t, all, 640)
				var marked []bulwark.Event
				for i, ev := range all {
					if ev.Sampled {
						assert.Equal(t, 63, i%64, "call %d is marked", i)
						marked = append(marked, ev)
					}
				}
				assert.Equal(t, got, marked, "OnSample gets exactly the events OnEvent sees marked")
			})
		})
	}
}

// TestOnSampleKeepsTheFastPath checks that OnSample alone leaves the
// state word without the listener and slow-path bits (so CLOSED calls stay
// on the fast path and OPEN rejections do not read the clock), that a
// CLOSED success allocates nothing, sampled calls included, and that
// OnEvent still sets them.
func TestOnSampleKeepsTheFastPath(t *testing.T) {
	var sample recorder
	b := newBreakerT(t, Config{RequestTimeout: -1, OnSample: sample.listen})
	assert.Zero(t, b.word.Load()&(bitTimed|bitListen), "OnSample must not set the listener bits")
	ctx := context.Background()
	allocs := testing.AllocsPerRun(64*20, func() { _, _ = Do(ctx, b, nop) })
	assert.Zero(t, allocs)
	assert.NotEmpty(t, sample.all(), "some of those calls were sampled")

	withEvent := newBreakerT(t, Config{RequestTimeout: -1, OnSample: sample.listen, OnEvent: func(bulwark.Event) {}})
	assert.NotZero(t, withEvent.word.Load()&bitListen)
	assert.NotZero(t, withEvent.word.Load()&bitTimed)
}

// TestOnSampleGetsCircuitEventsNotRejections opens the circuit with
// failures that are not in the sample: OnSample gets the circuit:opened
// event (with the statistics) and none of the failures, and later
// rejections reach it neither on the fast rejection path nor once the
// reset timeout is due and the probe slots are taken.
func TestOnSampleGetsCircuitEventsNotRejections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sample recorder
		b := newBreakerT(t, Config{RequestTimeout: -1, FailureThreshold: 3, ResetTimeout: time.Second,
			SuccessThreshold: 1, HalfOpenMaxCalls: 1, OnSample: sample.listen})
		oneStripe(b)
		for range 3 {
			call(b, errBoom)
		}
		for range 5 {
			ran, err := call(b, nil)
			require.False(t, ran)
			require.ErrorIs(t, err, ErrOpen)
		}
		assert.Equal(t, []string{"circuit:opened CLOSED->OPEN"}, sample.lines())
		opened := sample.all()[0]
		require.IsType(t, Stats{}, opened.Detail)
		assert.EqualValues(t, 3, opened.Detail.(Stats).Failures)
		assert.False(t, opened.Sampled)

		time.Sleep(time.Second)
		synctest.Wait()
		release := make(chan struct{})
		done := make(chan struct{})
		go func() { // the probe, held until the rejection below
			defer close(done)
			_, _ = Do(context.Background(), b, func(context.Context) (int, error) { <-release; return 1, nil })
		}()
		synctest.Wait()
		_, err := Do(context.Background(), b, nop)
		require.ErrorIs(t, err, ErrTooManyProbes)
		close(release)
		<-done
		assert.Equal(t, []string{"circuit:opened CLOSED->OPEN", "circuit:half-open OPEN->HALF_OPEN", "circuit:closed HALF_OPEN->CLOSED"},
			sample.lines(), "no request:rejected, and the probe (count 0) is not in the sample")
		assert.EqualValues(t, 6, b.Stats().Rejections)
	})
}

// TestOnSampleFailures checks which failures are sampled: a failure when
// the stripe's count is 63 mod 64 is, on the fast and the slow path, and
// so is the next one (a failure does not move the count), until a
// success; a panic there is a sampled request:failure too.
func TestOnSampleFailures(t *testing.T) {
	for _, name := range []string{"fast path", "request timeout"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sample recorder
				cfg := sampleConfigs(sample.listen, nil)[name]
				cfg.FailureThreshold = 10
				b := newBreakerT(t, cfg)
				oneStripe(b)
				for range 62 {
					call(b, nil)
				}
				call(b, errBoom) // count 62: not sampled
				call(b, nil)     // count 62 -> 63
				require.Empty(t, sample.all())
				call(b, errBoom) // count 63: sampled
				call(b, errBoom) // still 63: sampled
				assert.Panics(t, func() {
					_, _ = Do(context.Background(), b, func(context.Context) (int, error) { panic("boom") })
				})
				call(b, nil) // 63 -> 64: sampled
				call(b, nil) // 64: not
				got := sample.all()
				require.Len(t, got, 4)
				for i, kind := range []bulwark.EventKind{bulwark.RequestFailure, bulwark.RequestFailure, bulwark.RequestFailure, bulwark.RequestSuccess} {
					assert.Equal(t, kind, got[i].Kind, "event %d", i)
					assert.True(t, got[i].Sampled, "event %d", i)
				}
				assert.ErrorIs(t, got[0].Err, errBoom)
				assert.ErrorIs(t, got[2].Err, errPanicked)
				st := b.Stats()
				assert.EqualValues(t, 4, st.Failures)
				assert.EqualValues(t, 65, st.Successes)
			})
		})
	}
}
