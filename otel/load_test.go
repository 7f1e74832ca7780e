package otel

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// Refusals by the load layers count in bulwark.rejections under their
// layer, and appear on the refused call's span.
func TestLoadRejections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		rec := tracetest.NewSpanRecorder()
		tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
		s, err := pipeline.New(pipeline.Config{})
		require.NoError(t, err)
		require.NoError(t, s.Configure("bh", pipeline.Config{Bulkhead: &bulkhead.Config{MaxConcurrent: 1}}))
		require.NoError(t, s.Configure("rl", pipeline.Config{RateLimit: &ratelimit.Config{Rate: 1, MaxWait: -1}}))
		in, err := Instrument(s, Config{MeterProvider: mp})
		require.NoError(t, err)
		defer in.Close()

		// Each call takes a second (virtual time), bh's, or no time, rl's,
		// so that rl's bucket has no new token for the second call.
		call := func(executor, span string) error {
			ctx, sp := tracer.Start(t.Context(), span)
			defer sp.End()
			d := time.Second
			if executor == "rl" {
				d = 0
			}
			_, err := pipeline.Do(ctx, s, executor, serve(new(bool), d))
			return err
		}
		var wg sync.WaitGroup
		wg.Go(func() { assert.NoError(t, call("bh", "holder")) })
		synctest.Wait() // the holder has the only slot
		assert.ErrorIs(t, call("bh", "bh-refused"), bulwark.ErrRejected)
		wg.Wait()
		require.NoError(t, call("rl", "rl-first"))
		assert.ErrorIs(t, call("rl", "rl-refused"), bulwark.ErrRejected)

		m := collect(t, reader)
		assert.Equal(t, map[string]int64{
			"executor=bh,layer=bulkhead":  1,
			"executor=rl,layer=ratelimit": 1,
		}, ints(t, m["bulwark.rejections"]))
		assert.NotContains(t, m, "bulwark.calls", "no breaker")

		got := spanEvents(t, rec, "bh-refused")
		require.Len(t, got, 1)
		assert.Equal(t, "bulwark.bulkhead.rejected", got[0].Name)
		assert.Equal(t, "bulkhead", got[0].Attrs["bulwark.layer"])
		assert.Equal(t, "bh", got[0].Attrs["bulwark.executor"])
		got = spanEvents(t, rec, "rl-refused")
		require.Len(t, got, 1)
		assert.Equal(t, "bulwark.ratelimit.rejected", got[0].Name)
		assert.Equal(t, "ratelimit", got[0].Attrs["bulwark.layer"])
		assert.Empty(t, spanEvents(t, rec, "holder"))
	})
}
