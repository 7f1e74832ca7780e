package breaker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
)

func nop(context.Context) (int, error) { return 1, nil }

func benchBreaker(b *testing.B, cfg Config) *Breaker {
	b.Helper()
	br, err := New("bench", cfg)
	if err != nil {
		b.Fatal(err)
	}
	return br
}

// run benchmarks one call both serially and with RunParallel.
func run(b *testing.B, ctx context.Context, call func(context.Context)) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call(ctx)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				call(ctx)
			}
		})
	})
}

// BenchmarkBaseline calls the function directly: the floor the breaker's
// overhead is measured against on this machine.
func BenchmarkBaseline(b *testing.B) {
	fn := bulwark.Func[int](nop)
	run(b, context.Background(), func(ctx context.Context) { fn(ctx) })
}

// BenchmarkClosedSuccess is the hot path: a successful call through a
// CLOSED breaker.
func BenchmarkClosedSuccess(b *testing.B) {
	bg := context.Background()
	b.Run("timeout=off", func(b *testing.B) {
		br := benchBreaker(b, Config{RequestTimeout: -1})
		run(b, bg, func(ctx context.Context) { Do(ctx, br, nop) })
	})
	// OnSample set: the fast path stays as it is; one call in 64 builds an
	// event for the listener (here one that does nothing).
	b.Run("timeout=off/on-sample", func(b *testing.B) {
		br := benchBreaker(b, Config{RequestTimeout: -1, OnSample: func(bulwark.Event) {}})
		run(b, bg, func(ctx context.Context) { Do(ctx, br, nop) })
	})
	// The contention-free reference for the parallel case: every goroutine
	// has a breaker of its own, so nothing is shared. The shared breaker
	// above should be as fast.
	b.Run("timeout=off/unshared/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			br, err := New("bench", Config{RequestTimeout: -1})
			if err != nil {
				panic(err)
			}
			for pb.Next() {
				Do(bg, br, nop)
			}
		})
	})
	b.Run("timeout=default", func(b *testing.B) {
		br := benchBreaker(b, Config{})
		run(b, bg, func(ctx context.Context) { Do(ctx, br, nop) })
	})
	b.Run("timeout=default/caller-deadline-earlier", func(b *testing.B) {
		br := benchBreaker(b, Config{})
		ctx, cancel := context.WithTimeout(bg, time.Second)
		defer cancel()
		run(b, ctx, func(ctx context.Context) { Do(ctx, br, nop) })
	})
	b.Run("timeout=off/listener", func(b *testing.B) {
		br := benchBreaker(b, Config{RequestTimeout: -1, OnEvent: func(bulwark.Event) {}})
		run(b, bg, func(ctx context.Context) { Do(ctx, br, nop) })
	})
	b.Run("timeout=off/ratio", func(b *testing.B) {
		br := benchBreaker(b, Config{RequestTimeout: -1, FailureRatio: 0.5, MinimumThroughput: 10})
		run(b, bg, func(ctx context.Context) { Do(ctx, br, nop) })
	})
	b.Run("allow", func(b *testing.B) {
		br := benchBreaker(b, Config{RequestTimeout: -1})
		run(b, bg, func(context.Context) {
			done, _ := br.Allow()
			done(nil)
		})
	})
}

// BenchmarkOpenRejection is a call refused by an OPEN breaker.
func BenchmarkOpenRejection(b *testing.B) {
	bg := context.Background()
	b.Run("timeout=off", func(b *testing.B) {
		br := benchBreaker(b, Config{RequestTimeout: -1})
		br.ForceOpen()
		run(b, bg, func(ctx context.Context) { Do(ctx, br, nop) })
	})
	b.Run("timeout=default", func(b *testing.B) {
		br := benchBreaker(b, Config{})
		br.ForceOpen()
		run(b, bg, func(ctx context.Context) { Do(ctx, br, nop) })
	})
}

// BenchmarkGroupGet looks up an existing executor.
func BenchmarkGroupGet(b *testing.B) {
	var g Group
	for _, name := range []string{"notion", "slack", "payments", "github", "stripe"} {
		g.Get(name)
	}
	run(b, context.Background(), func(context.Context) { g.Get("payments") })
}

// mutexBreaker is the reference point of the issue: a breaker in the usual
// style, with one mutex and two clock reads per call (as gobreaker does),
// doing the same accounting.
type mutexBreaker struct {
	mu                   sync.Mutex
	successes, failures  int64
	consecutive          int
	lastSuccess, started time.Time
}

func (m *mutexBreaker) do(ctx context.Context, fn func(context.Context) (int, error)) (int, error) {
	m.mu.Lock()
	m.started = time.Now()
	m.mu.Unlock()
	v, err := fn(ctx)
	m.mu.Lock()
	if err == nil {
		m.successes++
		m.consecutive = 0
		m.lastSuccess = time.Now()
	} else {
		m.failures++
		m.consecutive++
	}
	m.mu.Unlock()
	return v, err
}

func BenchmarkReferenceMutexBreaker(b *testing.B) {
	var m mutexBreaker
	run(b, context.Background(), func(ctx context.Context) { m.do(ctx, nop) })
}
