package otel

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// loadStack has one executor per load layer, and one without any: bh, a
// bulkhead of 2 slots and a queue of 2; rl, a rate limiter of one call a
// second; rb, 2 attempts per call under a retry budget of one retry per
// 10s window (a floor of half a retry, a ratio next to nothing); plain, a breaker only.
func loadStack(t *testing.T) *pipeline.Stack {
	s, err := pipeline.New(pipeline.Config{})
	require.NoError(t, err)
	require.NoError(t, s.Configure("bh", pipeline.Config{Bulkhead: &bulkhead.Config{MaxConcurrent: 2, MaxWaiting: 2}}))
	require.NoError(t, s.Configure("rl", pipeline.Config{RateLimit: &ratelimit.Config{Rate: 1}}))
	require.NoError(t, s.Configure("rb", pipeline.Config{Retry: &retry.Config{
		MaxAttempts: 2, InitialInterval: 100 * time.Millisecond, NoJitter: true,
		Budget: &retry.Budget{Ratio: 1e-6, MinPerSecond: 0.05, Window: 10 * time.Second},
	}}))
	require.NoError(t, s.Configure("plain", pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}}))
	return s
}

// holdBulkhead starts 3 calls through bh that block until release is
// closed: 2 hold the slots, 1 waits in the queue. done ends when all 3
// have returned without error.
func holdBulkhead(t *testing.T, s *pipeline.Stack, release <-chan struct{}) (done func()) {
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			_, err := pipeline.Do(t.Context(), s, "bh", func(context.Context) (*page, error) {
				<-release
				return thePage, nil
			})
			assert.NoError(t, err)
		})
	}
	synctest.Wait()
	return wg.Wait
}

// pauseAndDelay makes rl delay two calls (each waits a second for its
// token) and then pause for 30s: the second delayed call fails with a
// Retry-After of 30s.
func pauseAndDelay(t *testing.T, s *pipeline.Stack) {
	ctx := t.Context()
	_, err := pipeline.Do(ctx, s, "rl", serve(new(bool), 0)) // the bucket's token
	require.NoError(t, err)
	_, err = pipeline.Do(ctx, s, "rl", serve(new(bool), 0)) // waits 1s
	require.NoError(t, err)
	_, err = pipeline.Do(ctx, s, "rl", func(context.Context) (*page, error) { // waits 1s
		return nil, retry.After(err503, 30*time.Second)
	})
	require.ErrorIs(t, err, err503)
}

// exhaustBudget makes 3 failing calls through rb: the first is retried
// (the budget's one retry of the window), the other two have their retry
// refused.
func exhaustBudget(t *testing.T, s *pipeline.Stack) {
	down := true
	for range 3 {
		_, err := pipeline.Do(t.Context(), s, "rb", serve(&down, 0))
		require.Error(t, err)
	}
}

// The state of the load layers is read from Stack.Stats() at collection:
// a bulkhead held full by blocked calls shows its slots in use, its limit
// and its queue; a rate limiter paused by a Retry-After shows the seconds
// left of the pause and the calls it delayed; a retry budget shows the
// retries it refused. Each series is there only for the executors that
// have the layer, and the gauges follow the layers as they drain.
func TestLoadLayerState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s := loadStack(t)
		in, err := Instrument(s, Config{MeterProvider: mp, NoSpanEvents: true})
		require.NoError(t, err)
		defer func() { assert.NoError(t, in.Close()) }()

		release := make(chan struct{})
		done := holdBulkhead(t, s, release)
		exhaustBudget(t, s)
		pauseAndDelay(t, s)

		m := collect(t, reader)
		assert.Equal(t, map[string]int64{"executor=bh": 2}, ints(t, m["bulwark.bulkhead.in_flight"]))
		assert.Equal(t, map[string]int64{"executor=bh": 2}, ints(t, m["bulwark.bulkhead.limit"]))
		assert.Equal(t, map[string]int64{"executor=bh": 1}, ints(t, m["bulwark.bulkhead.waiting"]))
		assert.Equal(t, map[string]float64{"executor=rl": 30}, floats(t, m["bulwark.ratelimit.pause.remaining"]))
		assert.Equal(t, map[string]int64{"executor=rl": 2}, ints(t, m["bulwark.ratelimit.delayed"]))
		assert.Equal(t, map[string]int64{"executor=rb": 2}, ints(t, m["bulwark.retry.budget.refused"]))
		for name, unit := range map[string]string{
			"bulwark.bulkhead.in_flight": "{call}", "bulwark.bulkhead.limit": "{call}", "bulwark.bulkhead.waiting": "{call}",
			"bulwark.ratelimit.pause.remaining": "s", "bulwark.ratelimit.delayed": "{call}", "bulwark.retry.budget.refused": "{retry}",
		} {
			assert.Equal(t, unit, m[name].Unit, name)
		}
		for _, name := range []string{"bulwark.ratelimit.delayed", "bulwark.retry.budget.refused"} {
			sum, ok := m[name].Data.(metricdata.Sum[int64])
			require.True(t, ok, "%s: %T", name, m[name].Data)
			assert.True(t, sum.IsMonotonic, name)
		}

		time.Sleep(10 * time.Second)
		close(release)
		done()
		m = collect(t, reader)
		assert.Equal(t, map[string]int64{"executor=bh": 0}, ints(t, m["bulwark.bulkhead.in_flight"]), "drained")
		assert.Equal(t, map[string]int64{"executor=bh": 0}, ints(t, m["bulwark.bulkhead.waiting"]))
		assert.Equal(t, map[string]int64{"executor=bh": 2}, ints(t, m["bulwark.bulkhead.limit"]))
		assert.Equal(t, map[string]float64{"executor=rl": 20}, floats(t, m["bulwark.ratelimit.pause.remaining"]), "10s later")

		time.Sleep(20 * time.Second)
		m = collect(t, reader)
		assert.Equal(t, map[string]float64{"executor=rl": 0}, floats(t, m["bulwark.ratelimit.pause.remaining"]), "over")
	})
}

// The load series are there from the start for an executor that has the
// layer, zeros included (with NoEvents too: they come from Stats), and
// not at all for a stack whose executors have none of the layers.
func TestLoadLayerStateOnlyWithTheLayer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s := loadStack(t)
		in, err := Instrument(s, Config{MeterProvider: mp, NoEvents: true})
		require.NoError(t, err)
		defer func() { assert.NoError(t, in.Close()) }()

		m := collect(t, reader)
		assert.Equal(t, map[string]int64{"executor=bh": 0}, ints(t, m["bulwark.bulkhead.in_flight"]))
		assert.Equal(t, map[string]int64{"executor=bh": 2}, ints(t, m["bulwark.bulkhead.limit"]))
		assert.Equal(t, map[string]float64{"executor=rl": 0}, floats(t, m["bulwark.ratelimit.pause.remaining"]))
		assert.Equal(t, map[string]int64{"executor=rl": 0}, ints(t, m["bulwark.ratelimit.delayed"]))
		assert.Equal(t, map[string]int64{"executor=rb": 0}, ints(t, m["bulwark.retry.budget.refused"]))

		bare, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}})
		require.NoError(t, err)
		require.NoError(t, bare.Configure("plain", pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}}))
		reader2 := sdkmetric.NewManualReader()
		in2, err := Instrument(bare, Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader2)), NoEvents: true})
		require.NoError(t, err)
		defer func() { assert.NoError(t, in2.Close()) }()
		m = collect(t, reader2)
		assert.Contains(t, m, "bulwark.circuit.state")
		for _, name := range []string{"bulwark.bulkhead.in_flight", "bulwark.bulkhead.limit", "bulwark.bulkhead.waiting",
			"bulwark.ratelimit.pause.remaining", "bulwark.ratelimit.delayed", "bulwark.retry.budget.refused"} {
			assert.NotContains(t, m, name)
		}
	})
}
