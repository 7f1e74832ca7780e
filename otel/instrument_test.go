package otel

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/internal/metricdef"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// outageStack is the stack of the scripted outage: fallback, a breaker
// that opens after 3 failures and probes after 30s, and 2 attempts per
// call with an exact 100ms wait.
func outageStack(t *testing.T) *pipeline.Stack {
	s, err := pipeline.New(pipeline.Config{
		Fallback: &pipeline.FallbackConfig{},
		Breaker:  &breaker.Config{FailureThreshold: 3, ResetTimeout: 30 * time.Second, RequestTimeout: -1},
		Retry:    &retry.Config{MaxAttempts: 2, InitialInterval: 100 * time.Millisecond, NoJitter: true},
	})
	require.NoError(t, err)
	return s
}

// A scripted outage (a success, three calls that fail twice each with a
// 503, two calls rejected while the circuit is open and answered from the
// fallback, then recovery through two probes) gives exactly these series.
// With AllDurations the histogram has every call; by default it has the
// breaker's sample, which these few calls do not reach (no stripe counts
// 63 successes), and every counter is the same.
func TestOutageMetrics(t *testing.T) {
	t.Run("AllDurations", func(t *testing.T) { testOutageMetrics(t, true) })
	t.Run("sampled", func(t *testing.T) { testOutageMetrics(t, false) })
}

func testOutageMetrics(t *testing.T, all bool) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s := outageStack(t)
		in, err := Instrument(s, Config{MeterProvider: mp, NoSpanEvents: true, AllDurations: all})
		require.NoError(t, err)
		defer func() { assert.NoError(t, in.Close()) }()

		ctx := t.Context()
		op := pipeline.Operation("get-page")
		down := false
		call := func() pipeline.Result[*page] {
			return pipeline.Execute(ctx, s, "notion", serve(&down, 10*time.Millisecond), op)
		}
		const ex = "executor=notion"

		require.NoError(t, call().Err)
		m := collect(t, reader)
		assert.Equal(t, map[string]int64{ex: 0}, ints(t, m["bulwark.circuit.state"]), "closed")

		down = true
		for range 3 {
			r := call()
			require.NoError(t, r.Err)
			require.True(t, r.FromCache)
			require.Equal(t, 2, r.Attempts)
		}
		m = collect(t, reader)
		assert.Equal(t, map[string]int64{ex: 2}, ints(t, m["bulwark.circuit.state"]), "open")
		assert.Equal(t, map[string]int64{ex: 1}, ints(t, m["bulwark.circuit.opens"]))

		for range 2 {
			r := call()
			require.True(t, r.Rejected)
			require.True(t, r.FromCache)
		}
		down = false
		time.Sleep(30 * time.Second)
		synctest.Wait()                // the reset timer fires at this instant: let it run (see the breaker package doc)
		require.NoError(t, call().Err) // first probe
		m = collect(t, reader)
		assert.Equal(t, map[string]int64{ex: 1}, ints(t, m["bulwark.circuit.state"]), "half-open")
		require.NoError(t, call().Err) // second probe closes
		synctest.Wait()

		m = collect(t, reader)
		assert.Equal(t, map[string]int64{ex: 0}, ints(t, m["bulwark.circuit.state"]), "closed again")
		assert.Equal(t, map[string]int64{ex: 1}, ints(t, m["bulwark.circuit.opens"]))
		assert.Equal(t, map[string]int64{
			ex + ",outcome=success":  3,
			ex + ",outcome=failure":  3,
			ex + ",outcome=rejected": 2,
		}, ints(t, m["bulwark.calls"]))
		if all {
			assert.Equal(t, map[string]hist{
				// 10ms each.
				ex + ",outcome=success": {Count: 3, Sum: 0.030},
				// 10ms, the 100ms wait, 10ms: 120ms each.
				ex + ",outcome=failure": {Count: 3, Sum: 0.360},
			}, hists(t, m["bulwark.call.duration"]))
		} else {
			assert.NotContains(t, m, "bulwark.call.duration", "no call in the sample")
		}
		assert.Equal(t, map[string]int64{ex: 3}, ints(t, m["bulwark.retry.attempts"]))
		assert.Equal(t, map[string]int64{ex: 3}, ints(t, m["bulwark.retry.exhausted"]))
		assert.Equal(t, map[string]int64{ex + ",layer=breaker": 2}, ints(t, m["bulwark.rejections"]))
		assert.Equal(t, map[string]int64{ex: 5}, ints(t, m["bulwark.fallback.served"]))
		assert.NotContains(t, m, "bulwark.idempotency.replays", "no replay happened")
		assert.NotContains(t, m, "bulwark.compensations", "no compensation ran")

		if all {
			d := m["bulwark.call.duration"].Data.(metricdata.Histogram[float64])
			assert.Equal(t, DefaultDurationBuckets(), d.DataPoints[0].Bounds, "advised buckets")
			assert.Equal(t, "s", m["bulwark.call.duration"].Unit)
			assert.Equal(t, metricdef.DurationHelp(true), m["bulwark.call.duration"].Description)
		}
		assert.Equal(t, "{call}", m["bulwark.calls"].Unit)
	})
}

// 10,000 successes of 10ms each, on one goroutine (one stripe, unless its
// stack moves): bulwark.calls counts every one, and the default histogram
// holds the breaker's sample, one call in 64 (156, or a few fewer), each
// with its own 10ms, described as a sample.
func TestSampledDurations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s := outageStack(t)
		in, err := Instrument(s, Config{MeterProvider: mp})
		require.NoError(t, err)
		defer in.Close()
		ctx := t.Context()
		for range 10_000 {
			_, err := pipeline.Do(ctx, s, "notion", serve(new(bool), 10*time.Millisecond))
			require.NoError(t, err)
		}
		m := collect(t, reader)
		const ex = "executor=notion"
		assert.Equal(t, map[string]int64{ex + ",outcome=success": 10_000}, ints(t, m["bulwark.calls"]), "exact")
		h := hists(t, m["bulwark.call.duration"])
		require.Len(t, h, 1)
		got := h[ex+",outcome=success"]
		assert.GreaterOrEqual(t, got.Count, uint64(150))
		assert.LessOrEqual(t, got.Count, uint64(10_000/64))
		assert.InDelta(t, float64(got.Count)*0.010, got.Sum, 1e-6, "each sample is a call's 10ms")
		assert.Equal(t, metricdef.DurationHelp(false), m["bulwark.call.duration"].Description)
		assert.Contains(t, m["bulwark.call.duration"].Description, "about 1 call in 64")
	})
}

// Replays and compensations by result: an idempotent call replayed once,
// and a failed call whose two undos ran, one of them failing.
func TestReplaysAndCompensations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s, err := pipeline.New(pipeline.Config{
			Idempotency: &pipeline.IdempotencyConfig{},
			Rollback:    &rollback.Config{Attempts: 2},
		})
		require.NoError(t, err)
		in, err := Instrument(s, Config{MeterProvider: mp})
		require.NoError(t, err)
		defer in.Close()

		ctx := t.Context()
		for range 2 {
			_, err := pipeline.Do(ctx, s, "payments", serve(new(bool), 0), pipeline.IdempotencyKey("charge-1"))
			require.NoError(t, err)
		}
		_, err = pipeline.Do(ctx, s, "payments", func(ctx context.Context) (*page, error) {
			require.NoError(t, rollback.OnRollback(ctx, "reserve", func(context.Context) error { return nil }))
			require.NoError(t, rollback.OnRollback(ctx, "charge", func(context.Context) error { return err503 }))
			return nil, err503
		})
		require.ErrorIs(t, err, err503)

		m := collect(t, reader)
		assert.Equal(t, map[string]int64{"executor=payments": 1}, ints(t, m["bulwark.idempotency.replays"]))
		assert.Equal(t, map[string]int64{
			"executor=payments,result=compensated": 1,
			"executor=payments,result=failed":      1,
		}, ints(t, m["bulwark.compensations"]))
		assert.NotContains(t, m, "bulwark.calls", "no breaker: calls are not counted")
		assert.NotContains(t, m, "bulwark.circuit.state", "no breaker: no state")
	})
}

// Close stops recording and observing; a second Close does nothing.
func TestClose(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	s := outageStack(t)
	in, err := Instrument(s, Config{MeterProvider: mp, AllDurations: true})
	require.NoError(t, err)
	_, err = pipeline.Do(t.Context(), s, "notion", serve(new(bool), 0))
	require.NoError(t, err)
	require.NoError(t, in.Close())
	require.NoError(t, in.Close())
	_, err = pipeline.Do(t.Context(), s, "notion", serve(new(bool), 0))
	require.NoError(t, err)

	m := collect(t, reader)
	h := hists(t, m["bulwark.call.duration"])
	require.Len(t, h, 1)
	assert.Equal(t, uint64(1), h["executor=notion,outcome=success"].Count, "the call after Close is not recorded")
	assert.NotContains(t, m, "bulwark.calls", "the callback is unregistered")
	assert.NotContains(t, m, "bulwark.circuit.state", "the callback is unregistered")
}

func TestInstrumentInvalid(t *testing.T) {
	_, err := Instrument(nil, Config{})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, "stack")

	_, err = Instrument(outageStack(t), Config{DurationBuckets: []float64{0.1, 0.1}})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, "DurationBuckets[1]")
	for _, b := range []float64{math.NaN(), math.Inf(1)} {
		_, err = Instrument(outageStack(t), Config{DurationBuckets: []float64{0.1, b}})
		assert.ErrorIs(t, err, ErrInvalid, "%v", b)
		assert.ErrorContains(t, err, "finite")
	}

	in, err := Instrument(outageStack(t), Config{MeterProvider: noop.NewMeterProvider()})
	require.NoError(t, err, "any MeterProvider works")
	assert.NoError(t, in.Close())
}

func TestStateValue(t *testing.T) {
	assert.Equal(t, int64(0), StateValue(breaker.Closed))
	assert.Equal(t, int64(1), StateValue(breaker.HalfOpen))
	assert.Equal(t, int64(2), StateValue(breaker.Open))
}

// With NoEvents the series Stats can give are read from it at collection,
// and the Stack has no subscriber: the outage gives the same calls,
// rejections, fallbacks and circuit series, and nothing else.
func TestNoEventsOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s := outageStack(t)
		in, err := Instrument(s, Config{MeterProvider: mp, NoEvents: true})
		require.NoError(t, err)
		defer func() { assert.NoError(t, in.Close()) }()

		ctx := t.Context()
		down := false
		call := func() pipeline.Result[*page] {
			return pipeline.Execute(ctx, s, "notion", serve(&down, 10*time.Millisecond), pipeline.Operation("get-page"))
		}
		require.NoError(t, call().Err)
		down = true
		for range 5 { // 3 failures open the circuit, 2 rejections
			require.True(t, call().FromCache)
		}
		const ex = "executor=notion"
		m := collect(t, reader)
		assert.Equal(t, map[string]int64{ex: 2}, ints(t, m["bulwark.circuit.state"]))
		assert.Equal(t, map[string]int64{ex: 1}, ints(t, m["bulwark.circuit.opens"]))
		assert.Equal(t, map[string]int64{
			ex + ",outcome=success":  1,
			ex + ",outcome=failure":  3,
			ex + ",outcome=rejected": 2,
		}, ints(t, m["bulwark.calls"]))
		assert.Equal(t, map[string]int64{ex + ",layer=breaker": 2}, ints(t, m["bulwark.rejections"]))
		assert.Equal(t, map[string]int64{ex: 5}, ints(t, m["bulwark.fallback.served"]))
		for _, name := range []string{"bulwark.call.duration", "bulwark.retry.attempts", "bulwark.retry.exhausted"} {
			assert.NotContains(t, m, name, "events are not seen")
		}
	})
}
