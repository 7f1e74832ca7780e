package otel

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bulwark-go/bulwark/pipeline"
)

// spanEvents returns the events of the ended span named name, each as its
// name and its attributes.
func spanEvents(t *testing.T, rec *tracetest.SpanRecorder, name string) []spanEvent {
	t.Helper()
	for _, s := range rec.Ended() {
		if s.Name() != name {
			continue
		}
		var out []spanEvent
		for _, e := range s.Events() {
			attrs := map[string]any{}
			for _, kv := range e.Attributes {
				attrs[string(kv.Key)] = kv.Value.AsInterface()
			}
			out = append(out, spanEvent{Name: e.Name, Attrs: attrs})
		}
		return out
	}
	t.Fatalf("no span %q", name)
	return nil
}

type spanEvent struct {
	Name  string
	Attrs map[string]any
}

// Retries, the circuit opening, rejections, the fallback and the circuit
// closing appear as events on the active span of the call that caused
// them, with the executor, operation, attempt, wait and error. The
// breaker's own rejection (request:rejected) has a span event only with
// AllDurations: the default sampled subscription does not get the
// breaker's rejections, which stay on its allocation-free path.
func TestSpanEvents(t *testing.T) {
	t.Run("AllDurations", func(t *testing.T) { testSpanEvents(t, true) })
	t.Run("sampled", func(t *testing.T) { testSpanEvents(t, false) })
}

func testSpanEvents(t *testing.T, all bool) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		tracer := tp.Tracer("test")
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		s := outageStack(t)
		in, err := Instrument(s, Config{MeterProvider: mp, AllDurations: all})
		require.NoError(t, err)
		defer in.Close()

		down := false
		call := func(span string) {
			ctx, sp := tracer.Start(t.Context(), span)
			defer sp.End()
			pipeline.Execute(ctx, s, "notion", serve(&down, 10*time.Millisecond), pipeline.Operation("get-page"))
		}
		call("ok")
		down = true
		call("fail-1")
		call("fail-2")
		call("fail-3")
		call("rejected")
		down = false
		time.Sleep(30 * time.Second)
		synctest.Wait() // the reset timer fires at this instant: let it run (see the breaker package doc)
		call("probe-1")
		call("probe-2")

		assert.Empty(t, spanEvents(t, rec, "ok"), "a success adds no event")
		failure := func(attempt int) []spanEvent {
			return []spanEvent{
				{Name: "bulwark.retry.attempt", Attrs: map[string]any{
					"bulwark.executor": "notion", "bulwark.operation": "get-page",
					"bulwark.attempt": int64(1), "bulwark.wait": 0.1, "error.message": err503.Error(),
				}},
				{Name: "bulwark.retry.exhausted", Attrs: map[string]any{
					"bulwark.executor": "notion", "bulwark.operation": "get-page",
					"bulwark.attempt": int64(2), "error.message": spanEventsErr(t, rec, "fail-1"),
				}},
			}
		}
		got := spanEvents(t, rec, "fail-1")
		require.Len(t, got, 3, "%v", got)
		assert.Equal(t, failure(1), got[:2])
		assert.Equal(t, "bulwark.fallback.used", got[2].Name)
		assert.Equal(t, "notion", got[2].Attrs["bulwark.executor"])
		assert.Contains(t, got[2].Attrs, "bulwark.fallback.age")

		got = spanEvents(t, rec, "fail-3")
		names := eventNames(got)
		assert.Equal(t, []string{"bulwark.retry.attempt", "bulwark.retry.exhausted", "bulwark.circuit.opened", "bulwark.fallback.used"}, names)
		assert.Equal(t, map[string]any{
			"bulwark.executor": "notion", "bulwark.operation": "get-page",
			"bulwark.circuit.from": "CLOSED", "bulwark.circuit.to": "OPEN",
		}, got[2].Attrs, "the circuit change is on the span of the call that caused it")

		got = spanEvents(t, rec, "rejected")
		if all {
			assert.Equal(t, []string{"bulwark.request.rejected", "bulwark.fallback.used"}, eventNames(got))
			assert.Equal(t, "breaker", got[0].Attrs["bulwark.layer"])
			assert.Equal(t, "breaker notion: circuit open", got[0].Attrs["error.message"])
		} else {
			assert.Equal(t, []string{"bulwark.fallback.used"}, eventNames(got))
			assert.Equal(t, "breaker notion: circuit open", got[0].Attrs["error.message"], "the fallback's event names the rejection")
		}

		assert.Contains(t, eventNames(spanEvents(t, rec, "probe-2")), "bulwark.circuit.closed")
	})
}

// Without a recording span nothing is added, and with NoSpanEvents no
// span gets events.
func TestNoSpanEvents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	s := outageStack(t)
	in, err := Instrument(s, Config{MeterProvider: mp, NoSpanEvents: true})
	require.NoError(t, err)
	defer in.Close()
	_, err = pipeline.Do(context.Background(), s, "notion", serve(new(bool), 0)) // makes the executor
	require.NoError(t, err)
	s.Breaker("notion").ForceOpen()
	ctx, sp := tp.Tracer("test").Start(context.Background(), "rejected")
	_, err = pipeline.Do(ctx, s, "notion", serve(new(bool), 0))
	sp.End()
	require.Error(t, err)
	assert.Empty(t, spanEvents(t, rec, "rejected"))
}

func eventNames(evs []spanEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out
}

// spanEventsErr is the error message of the retry:exhausted event of the
// span named name (the retry layer's final error, which says how many
// attempts were made).
func spanEventsErr(t *testing.T, rec *tracetest.SpanRecorder, name string) string {
	for _, s := range rec.Ended() {
		if s.Name() != name {
			continue
		}
		for _, e := range s.Events() {
			if e.Name == "bulwark.retry.exhausted" {
				for _, kv := range e.Attributes {
					if kv.Key == attribute.Key("error.message") {
						assert.Contains(t, kv.Value.AsString(), err503.Error())
						return kv.Value.AsString()
					}
				}
			}
		}
	}
	t.Fatalf("no retry:exhausted error on %q", name)
	return ""
}
