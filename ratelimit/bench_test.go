package ratelimit_test

import (
	"context"
	"math"
	"testing"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark/ratelimit"
)

// The allowed path against x/time/rate alone, in one run: the target is
// BenchmarkWaitAllowed ≤ 1.2 × BenchmarkRateAllow. Both buckets are large
// enough never to run dry.
const benchRate, benchBurst = 1e12, 1 << 40

// BenchmarkRateAllow: rate.Limiter.Allow alone, the baseline.
func BenchmarkRateAllow(b *testing.B) {
	lim := rate.NewLimiter(benchRate, benchBurst)
	b.ReportAllocs()
	for b.Loop() {
		if !lim.Allow() {
			b.Fatal("refused")
		}
	}
}

// BenchmarkWaitAllowed: Limiter.Wait when a token is there.
func BenchmarkWaitAllowed(b *testing.B) {
	l, _ := ratelimit.New("svc", ratelimit.Config{Rate: benchRate, Burst: benchBurst})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWaitUnlimited: Wait on a limiter of rate +Inf that is not
// paused (what a pipeline executor with only Retry-After pauses pays).
func BenchmarkWaitUnlimited(b *testing.B) {
	l, _ := ratelimit.New("svc", ratelimit.Config{Rate: math.Inf(1)})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDoAllowed: Do around a trivial function when a token is there.
func BenchmarkDoAllowed(b *testing.B) {
	l, _ := ratelimit.New("svc", ratelimit.Config{Rate: benchRate, Burst: benchBurst})
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ratelimit.Do(ctx, l, fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejected: a refused call (no token, MaxWait negative).
func BenchmarkRejected(b *testing.B) {
	l, _ := ratelimit.New("svc", ratelimit.Config{Rate: 1e-9, MaxWait: -1})
	ctx := context.Background()
	_ = l.Wait(ctx)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx); err == nil {
			b.Fatal("admitted")
		}
	}
}

// BenchmarkRateAllowParallel and BenchmarkWaitAllowedParallel: the same
// on every P at once.
func BenchmarkRateAllowParallel(b *testing.B) {
	lim := rate.NewLimiter(benchRate, benchBurst)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !lim.Allow() {
				b.Error("refused")
				return
			}
		}
	})
}

func BenchmarkWaitAllowedParallel(b *testing.B) {
	l, _ := ratelimit.New("svc", ratelimit.Config{Rate: benchRate, Burst: benchBurst})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Wait(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
