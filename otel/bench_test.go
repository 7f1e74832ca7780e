package otel

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func getPage(context.Context) (*page, error) { return thePage, nil }

// breakerOnly is the stack of the benchmarks: a breaker (the layer whose
// events say how calls went) without its request timeout.
func breakerOnly(b *testing.B) *pipeline.Stack {
	s, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func runDo(b *testing.B, s *pipeline.Stack) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v, err := pipeline.Do(ctx, s, "notion", getPage); err != nil || v != thePage {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkDo measures a closed breaker's success through pipeline.Do:
// with nobody listening; with a subscriber that does nothing (the cost of
// the breaker's listener path: it reads the clock and builds an event);
// with a sampled subscriber that does nothing (the breaker keeps its fast
// path; one call in 64 builds an event); and with the OTel
// instrumentation recording into the SDK: by default (a sampled
// subscription), with AllDurations (every call) and with NoEvents.
func BenchmarkDo(b *testing.B) {
	instrumented := func(b *testing.B, cfg Config) {
		s := breakerOnly(b)
		cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		in, err := Instrument(s, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		runDo(b, s)
	}
	b.Run("breaker-only/no-listener", func(b *testing.B) {
		runDo(b, breakerOnly(b))
	})
	b.Run("breaker-only/noop-subscriber", func(b *testing.B) {
		s := breakerOnly(b)
		defer s.Subscribe(func(bulwark.Event) {})()
		runDo(b, s)
	})
	b.Run("breaker-only/noop-sampled-subscriber", func(b *testing.B) {
		s := breakerOnly(b)
		defer s.SubscribeSampled(func(bulwark.Event) {})()
		runDo(b, s)
	})
	b.Run("breaker-only/otel-metrics", func(b *testing.B) {
		instrumented(b, Config{})
	})
	b.Run("breaker-only/otel-all-durations", func(b *testing.B) {
		instrumented(b, Config{AllDurations: true})
	})
	b.Run("breaker-only/otel-no-events", func(b *testing.B) {
		instrumented(b, Config{NoEvents: true})
	})
}

// BenchmarkHandle measures the subscriber callback alone, for a success
// event, recording into the SDK.
func BenchmarkHandle(b *testing.B) {
	s := breakerOnly(b)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	in, err := Instrument(s, Config{MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	ev := bulwark.Event{Kind: bulwark.RequestSuccess, Executor: "notion", Time: time.Now(), Duration: 3 * time.Millisecond, Context: context.Background()}
	b.Run("success", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			in.handle(ev)
		}
	})
	b.Run("success/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				in.handle(ev)
			}
		})
	})
	ev.Kind = bulwark.RetryAttempt
	ev.Attempt = 1
	ev.Err = errors.New("notion: 503")
	b.Run("retry-attempt-no-span", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			in.handle(ev)
		}
	})
	// A recording span: the span event's attributes and options are
	// allocated, as the trace API requires. The span is ended and replaced
	// every 64 events, so it does not grow without bound.
	tp := sdktrace.NewTracerProvider()
	b.Run("retry-attempt-recording-span", func(b *testing.B) {
		b.ReportAllocs()
		var sp trace.Span
		i := 0
		for b.Loop() {
			if i%64 == 0 {
				if sp != nil {
					sp.End()
				}
				ev.Context, sp = tp.Tracer("bench").Start(context.Background(), "call")
			}
			i++
			in.handle(ev)
		}
		sp.End()
	})
}
