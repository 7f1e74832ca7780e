package idempotency_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// lease renewal armed), record the result. Keys are made with
// strconv.Itoa (one allocation of the caller's). The store is at its
// MaxEntries in the steady state, so each claim also evicts the oldest
// completed record: "default" is the 100,000-record default, dominated by
// cache misses in a large map; "small" keeps the store in cache (4,096
// records), to show locking rather than memory.
func BenchmarkFirstExecution(b *testing.B) {
	for _, size := range []struct {
		name       string
		maxEntries int
	}{{"default", 0}, {"small", 4096}} {
		b.Run(size.name, func(b *testing.B) {
			benchFirstExecution(b, func(b *testing.B) idempotency.Store {
				s, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{MaxEntries: size.maxEntries})
				if err != nil {
					b.Fatal(err)
				}
				return s
			})
		})
	}
}

// BenchmarkFirstExecutionGlobalLockStore is the small case with a store
// behind one global mutex, for comparison with the sharded MemoryStore.
func BenchmarkFirstExecutionGlobalLockStore(b *testing.B) {
	benchFirstExecution(b, func(b *testing.B) idempotency.Store {
		s, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{MaxEntries: 4096})
		if err != nil {
			b.Fatal(err)
		}
		return &globalLockStore{s: s}
	})
}

func benchFirstExecution(b *testing.B, newStore func(b *testing.B) idempotency.Store) {
	ctx := context.Background()
	fn := value("receipt")
	newM := func(b *testing.B) *idempotency.Manager {
		m, err := idempotency.New(newStore(b), idempotency.Config{})
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	b.Run("serial", func(b *testing.B) {
		m := newM(b)
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
		m := newM(b)
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

// globalLockStore serializes every operation of a store behind one mutex.
type globalLockStore struct {
	mu sync.Mutex
	s  idempotency.Store
}

func (g *globalLockStore) Claim(ctx context.Context, key, owner, fp string, lease time.Duration) (idempotency.Record, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.s.Claim(ctx, key, owner, fp, lease)
}

func (g *globalLockStore) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.s.Extend(ctx, key, owner, lease)
}

func (g *globalLockStore) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.s.Complete(ctx, key, owner, out, ttl)
}

func (g *globalLockStore) Release(ctx context.Context, key, owner string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.s.Release(ctx, key, owner)
}

func (g *globalLockStore) Get(ctx context.Context, key string) (idempotency.Record, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.s.Get(ctx, key)
}

func (g *globalLockStore) Forget(ctx context.Context, key string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.s.Forget(ctx, key)
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
