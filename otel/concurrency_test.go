package otel

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
)

// Calls on several executors from many goroutines, collected while they
// run, are all counted once (run with -race: executors are added while
// the callback reads them); the histogram has every call with
// AllDurations, and at most one in 64 by default.
func TestConcurrentCalls(t *testing.T) {
	t.Run("AllDurations", func(t *testing.T) { testConcurrentCalls(t, true) })
	t.Run("sampled", func(t *testing.T) { testConcurrentCalls(t, false) })
}

func testConcurrentCalls(t *testing.T, all bool) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	s, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}})
	require.NoError(t, err)
	in, err := Instrument(s, Config{MeterProvider: mp, AllDurations: all})
	require.NoError(t, err)
	defer in.Close()

	const goroutines, calls, executors = 8, 200, 4
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				_, err := pipeline.Do(t.Context(), s, fmt.Sprint("exec-", (g+i)%executors), serve(new(bool), 0))
				assert.NoError(t, err)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			var rm metricdata.ResourceMetrics
			assert.NoError(t, reader.Collect(context.Background(), &rm))
		}
	})
	wg.Wait()

	m := collect(t, reader)
	want := map[string]int64{}
	for e := range executors {
		want[fmt.Sprintf("executor=exec-%d,outcome=success", e)] = goroutines * calls / executors
	}
	assert.Equal(t, want, ints(t, m["bulwark.calls"]))
	var n uint64
	if d, ok := m["bulwark.call.duration"]; ok {
		for _, h := range hists(t, d) {
			n += h.Count
		}
	}
	if all {
		assert.Equal(t, uint64(goroutines*calls), n)
	} else {
		assert.LessOrEqual(t, n, uint64(goroutines*calls/64))
	}
}
