package compare

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/cache"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
)

const (
	size    = 10000           // maximum entries
	ttl     = 5 * time.Minute // time to live of every entry
	numKeys = 1 << 10         // keys read or overwritten, all present
)

// kv is the part of a cache the benchmarks use.
type kv interface {
	get(key string) (int, bool)
	set(key string, value int)
}

type bulwarkCache struct{ c *cache.Cache[string, int] }

func (b bulwarkCache) get(k string) (int, bool) { return b.c.Get(k) }
func (b bulwarkCache) set(k string, v int)      { b.c.Set(k, v) }

type expirableCache struct{ c *expirable.LRU[string, int] }

func (e expirableCache) get(k string) (int, bool) { return e.c.Get(k) }
func (e expirableCache) set(k string, v int)      { e.c.Add(k, v) }

type otterCache struct{ c *otter.Cache[string, int] }

func (o otterCache) get(k string) (int, bool) { return o.c.GetIfPresent(k) }
func (o otterCache) set(k string, v int)      { o.c.Set(k, v) }

// cleanUp applies otter's pending evictions: it enforces its bound
// asynchronously, so a moment after a burst of inserts it may hold a few
// entries more than MaximumSize.
func (o otterCache) cleanUp() { o.c.CleanUp() }

// impls builds each library's cache with the same bound and TTL. Every one
// counts hits and misses, as bulwark's cache always does.
var impls = []struct {
	name string
	make func(tb testing.TB, max int) kv
}{
	{"bulwark", func(b testing.TB, max int) kv {
		c, err := cache.New[string, int](cache.Config{MaxEntries: max, TTL: ttl})
		if err != nil {
			b.Fatal(err)
		}
		return bulwarkCache{c}
	}},
	{"expirable", func(b testing.TB, max int) kv {
		// Its cleanup goroutine can never be stopped (v2.0.7).
		return expirableCache{expirable.NewLRU[string, int](max, nil, ttl)}
	}},
	{"otter", func(b testing.TB, max int) kv {
		c, err := otter.New(&otter.Options[string, int]{
			MaximumSize:      max,
			ExpiryCalculator: otter.ExpiryWriting[string, int](ttl),
			StatsRecorder:    stats.NewCounter(),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.StopAllGoroutines() })
		return otterCache{c}
	}},
	// A reference row, not the same work: otter without expiry reads no
	// clock and keeps no timer wheel. It shows what the TTL costs otter.
	{"otter-nottl", func(b testing.TB, max int) kv {
		c, err := otter.New(&otter.Options[string, int]{
			MaximumSize:   max,
			StatsRecorder: stats.NewCounter(),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.StopAllGoroutines() })
		return otterCache{c}
	}},
}

func keys() []string {
	ks := make([]string, numKeys)
	for i := range ks {
		ks[i] = "key-" + strconv.Itoa(i)
	}
	return ks
}

func filled(b *testing.B, mk func(testing.TB, int) kv) (kv, []string) {
	c, ks := mk(b, size), keys()
	for i, k := range ks {
		c.set(k, i)
	}
	for _, k := range ks {
		if _, ok := c.get(k); !ok {
			b.Fatalf("%s missing after fill", k)
		}
	}
	return c, ks
}

func BenchmarkGetHit(b *testing.B) {
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			c, ks := filled(b, impl.make)
			i := 0
			for b.Loop() {
				if _, ok := c.get(ks[i&(numKeys-1)]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			c, ks := filled(b, impl.make)
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(numKeys) // goroutines do not walk the keys in lockstep
				for pb.Next() {
					if _, ok := c.get(ks[i&(numKeys-1)]); !ok {
						b.Error("miss")
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkSet overwrites keys that are present.
func BenchmarkSet(b *testing.B) {
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			c, ks := filled(b, impl.make)
			i := 0
			for b.Loop() {
				c.set(ks[i&(numKeys-1)], i)
				i++
			}
		})
	}
}

func BenchmarkSetParallel(b *testing.B) {
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			c, ks := filled(b, impl.make)
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(numKeys) // goroutines do not walk the keys in lockstep
				for pb.Next() {
					c.set(ks[i&(numKeys-1)], i)
					i++
				}
			})
		})
	}
}

// BenchmarkSetEvict inserts new keys into a full cache of numKeys entries,
// so that every insert evicts.
func BenchmarkSetEvict(b *testing.B) {
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			c := impl.make(b, numKeys)
			ks := make([]string, 1<<16)
			for i := range ks {
				ks[i] = "new-" + strconv.Itoa(i)
			}
			for i := range numKeys {
				c.set(ks[i], i)
			}
			i := 0
			for b.Loop() {
				c.set(ks[i&(len(ks)-1)], i)
				i++
			}
		})
	}
}

// TestSameBehaviour checks that every cache measured here does the work the
// benchmarks assume: it returns what was set and stays within its bound.
func TestSameBehaviour(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			c := impl.make(t, numKeys)
			for i := range 4 * numKeys {
				c.set(strconv.Itoa(i), i)
				if v, ok := c.get(strconv.Itoa(i)); !ok || v != i {
					t.Fatalf("get(%d) = %d, %v right after set", i, v, ok)
				}
			}
			if o, ok := c.(interface{ cleanUp() }); ok {
				o.cleanUp()
			}
			present := 0
			for i := range 4 * numKeys {
				if _, ok := c.get(strconv.Itoa(i)); ok {
					present++
				}
			}
			if present > numKeys {
				t.Fatalf("%d entries present, bound is %d", present, numKeys)
			}
		})
	}
}
