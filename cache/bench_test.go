package cache

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/bulwark-go/bulwark"
)

const benchKeys = 1 << 10 // keys read or written, all present in the cache

func benchKeySet() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	return keys
}

func filledCache(b *testing.B) (*Cache[string, int], []string) {
	c := newCache[string, int](b, Config{})
	keys := benchKeySet()
	for i, k := range keys {
		c.Set(k, i)
	}
	return c, keys
}

func BenchmarkGetHit(b *testing.B) {
	c, keys := filledCache(b)
	i := 0
	for b.Loop() {
		if _, ok := c.Get(keys[i&(benchKeys-1)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c, keys := filledCache(b)
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(benchKeys) // goroutines do not walk the keys in lockstep
		for pb.Next() {
			if _, ok := c.Get(keys[i&(benchKeys-1)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

func BenchmarkGetMiss(b *testing.B) {
	c, _ := filledCache(b)
	for b.Loop() {
		if _, ok := c.Get("absent"); ok {
			b.Fatal("hit")
		}
	}
}

// BenchmarkSet overwrites keys that are present.
func BenchmarkSet(b *testing.B) {
	c, keys := filledCache(b)
	i := 0
	for b.Loop() {
		c.Set(keys[i&(benchKeys-1)], i)
		i++
	}
}

func BenchmarkSetParallel(b *testing.B) {
	c, keys := filledCache(b)
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(benchKeys) // goroutines do not walk the keys in lockstep
		for pb.Next() {
			c.Set(keys[i&(benchKeys-1)], i)
			i++
		}
	})
}

// BenchmarkSetEvict inserts new keys into a full cache: every Set evicts.
func BenchmarkSetEvict(b *testing.B) {
	c := newCache[int, int](b, Config{MaxEntries: benchKeys})
	for i := range benchKeys {
		c.Set(i, i)
	}
	i := benchKeys
	for b.Loop() {
		c.Set(i, i)
		i++
	}
}

// BenchmarkFallbackSuccess is the fallback's success path: the call
// succeeds and its result is stored over the key's previous value.
func BenchmarkFallbackSuccess(b *testing.B) {
	b.Run("typed", func(b *testing.B) {
		c := newCache[string, page](b, Config{})
		benchFallbackSuccess(b, Fallback[page](c, "dashboard", FallbackConfig{}))
	})
	b.Run("any", func(b *testing.B) {
		c := newCache[string, any](b, Config{})
		benchFallbackSuccess(b, Fallback[page](c, "dashboard", FallbackConfig{}))
	})
	b.Run("ctxkey", func(b *testing.B) {
		c := newCache[string, page](b, Config{})
		ctx := WithKey(context.Background(), "dashboard")
		call := FallbackFunc[page](c, AttachedKey[string], FallbackConfig{})(okPage)
		benchCall(b, ctx, call)
	})
}

func okPage(context.Context) (page, error)   { return page{"p", 1}, nil }
func failPage(context.Context) (page, error) { return page{}, errDown }

func benchFallbackSuccess(b *testing.B, mw bulwark.Middleware[page]) {
	benchCall(b, context.Background(), mw(okPage))
}

func benchCall(b *testing.B, ctx context.Context, call bulwark.Func[page]) {
	for b.Loop() {
		if _, err := call(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFallbackServe is the failure path answered from the cache.
func BenchmarkFallbackServe(b *testing.B) {
	c := newCache[string, page](b, Config{})
	c.Set("dashboard", page{"p", 1})
	benchCall(b, context.Background(), Fallback[page](c, "dashboard", FallbackConfig{})(failPage))
}

func BenchmarkFallbackSuccessParallel(b *testing.B) {
	c := newCache[string, page](b, Config{})
	call := Fallback[page](c, "dashboard", FallbackConfig{})(okPage)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := call(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDoFallback is DoFallback's success path, the per-call form.
func BenchmarkDoFallback(b *testing.B) {
	c := newCache[string, page](b, Config{})
	ctx := context.Background()
	cfg := FallbackConfig{}
	for b.Loop() {
		if _, err := DoFallback(ctx, c, "dashboard", cfg, okPage); err != nil {
			b.Fatal(err)
		}
	}
}
