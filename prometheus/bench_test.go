package prometheus

import (
	"context"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
)

func getPage(context.Context) (*page, error) { return thePage, nil }

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

// BenchmarkDo measures a closed breaker's success through pipeline.Do
// with nobody listening, with a subscriber that does nothing, and with the
// Collector: by default (a sampled subscription), with AllDurations
// (every call) and with NoEvents.
func BenchmarkDo(b *testing.B) {
	b.Run("breaker-only/no-listener", func(b *testing.B) {
		runDo(b, breakerOnly(b))
	})
	b.Run("breaker-only/noop-subscriber", func(b *testing.B) {
		s := breakerOnly(b)
		defer s.Subscribe(func(bulwark.Event) {})()
		runDo(b, s)
	})
	b.Run("breaker-only/prometheus", func(b *testing.B) {
		s := breakerOnly(b)
		c, err := NewCollector(s, Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		runDo(b, s)
	})
	b.Run("breaker-only/prometheus-all-durations", func(b *testing.B) {
		s := breakerOnly(b)
		c, err := NewCollector(s, Config{AllDurations: true})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		runDo(b, s)
	})
	b.Run("breaker-only/prometheus-no-events", func(b *testing.B) {
		s := breakerOnly(b)
		c, err := NewCollector(s, Config{NoEvents: true})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		runDo(b, s)
	})
}

// BenchmarkHandle measures the subscriber callback alone, for a success
// event.
func BenchmarkHandle(b *testing.B) {
	c, err := NewCollector(breakerOnly(b), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ev := bulwark.Event{Kind: bulwark.RequestSuccess, Executor: "notion", Time: time.Now(), Duration: 3 * time.Millisecond, Context: context.Background()}
	b.Run("success", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.handle(ev)
		}
	})
	b.Run("success/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.handle(ev)
			}
		})
	})
}
