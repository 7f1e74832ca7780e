package idempotency_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bulwark-go/bulwark/idempotency"
)

func benchManager(b *testing.B) *idempotency.Manager {
	b.Helper()
	m, err := idempotency.New(nil, idempotency.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkReplay is the replay path: a completed key answered from the
// in-memory store.
func BenchmarkReplay(b *testing.B) {
	m := benchManager(b)
	ctx := context.Background()
	fn := value("receipt")
	if _, err := idempotency.Do(ctx, m, "charge-1", fn); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := idempotency.Execute(ctx, m, "charge-1", "", fn); !r.Replayed {
				b.Fatal("not replayed")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r := idempotency.Execute(ctx, m, "charge-1", "", fn); !r.Replayed {
					b.Fatal("not replayed")
				}
			}
		})
	})
}

// BenchmarkFirstExecution is the path of a new key: claim, run fn (with
// its lease renewal armed), record the result. Keys are made with
// strconv.Itoa (one allocation of the caller's). Past the store's
// MaxEntries, each claim also evicts the oldest completed record.
func BenchmarkFirstExecution(b *testing.B) {
	ctx := context.Background()
	fn := value("receipt")
	b.Run("serial", func(b *testing.B) {
		m := benchManager(b)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			if _, err := idempotency.Do(ctx, m, strconv.Itoa(i), fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		m := benchManager(b)
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := idempotency.Do(ctx, m, strconv.FormatInt(n.Add(1), 10), fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// globalFlights is the baseline the first-execution path must beat under
// parallel load: deduplication behind one global mutex, singleflight
// style, with no store and no lease.
type globalFlights struct {
	mu sync.Mutex
	m  map[string]*globalCall
}

type globalCall struct {
	wg  sync.WaitGroup
	val string
}

func (g *globalFlights) do(key string, fn func() string) string {
	g.mu.Lock()
	if c, ok := g.m[key]; ok {
		g.mu.Unlock()
		c.wg.Wait()
		return c.val
	}
	c := &globalCall{}
	c.wg.Add(1)
	g.m[key] = c
	g.mu.Unlock()
	c.val = fn()
	c.wg.Done()
	g.mu.Lock()
	delete(g.m, key)
	g.mu.Unlock()
	return c.val
}

func BenchmarkFirstExecutionBaselineGlobalMutex(b *testing.B) {
	fn := func() string { return "receipt" }
	b.Run("serial", func(b *testing.B) {
		g := &globalFlights{m: map[string]*globalCall{}}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			_ = g.do(strconv.Itoa(i), fn)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		g := &globalFlights{m: map[string]*globalCall{}}
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = g.do(strconv.FormatInt(n.Add(1), 10), fn)
			}
		})
	})
}

func BenchmarkMemoryStore(b *testing.B) {
	ctx := context.Background()
	s, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	_, _, _ = s.Claim(ctx, "k", "o", "", idempotency.DefaultLease)
	_ = s.Complete(ctx, "k", "o", idempotency.Outcome{Value: 1}, idempotency.DefaultTTL)
	b.Run("get-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _, _ = s.Get(ctx, "k")
			}
		})
	})
}
