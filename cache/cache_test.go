package cache

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newCache[K comparable, V any](t testing.TB, cfg Config) *Cache[K, V] {
	t.Helper()
	c, err := New[K, V](cfg)
	require.NoError(t, err)
	return c
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{MaxEntries: -1}, "MaxEntries"},
		{Config{TTL: -time.Second}, "TTL"},
	} {
		c, err := New[string, int](tc.cfg)
		require.Error(t, err, tc.field)
		assert.Nil(t, c)
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, err.Error(), tc.field)
	}
}

func TestZeroConfigDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[int, int](t, Config{})
		total := 0
		for i := range c.shards {
			total += c.shards[i].capacity
		}
		assert.Equal(t, DefaultMaxEntries, total, "MaxEntries defaults to 10000")
		for i := range 2 * DefaultMaxEntries {
			c.Set(i, i)
		}
		assert.LessOrEqual(t, c.Len(), DefaultMaxEntries)
		assert.Greater(t, c.Len(), DefaultMaxEntries*99/100)
		assert.Equal(t, uint64(2*DefaultMaxEntries-c.Len()), c.Stats().Evictions)

		c.Set(-1, 7)
		time.Sleep(DefaultTTL - time.Nanosecond)
		v, ok := c.Get(-1)
		assert.True(t, ok, "still readable just before the default TTL")
		assert.Equal(t, 7, v)
		time.Sleep(time.Nanosecond)
		_, ok = c.Get(-1)
		assert.False(t, ok, "expired at the default TTL of 5m")
	})
}

func TestGetSetDelete(t *testing.T) {
	c := newCache[string, int](t, Config{})
	_, ok := c.Get("a")
	assert.False(t, ok)

	c.Set("a", 1)
	c.Set("b", 2)
	v, ok := c.Get("a")
	assert.True(t, ok)
	assert.Equal(t, 1, v)

	c.Set("a", 10)
	v, _ = c.Get("a")
	assert.Equal(t, 10, v, "Set replaces the value")
	assert.Equal(t, 2, c.Len())

	assert.True(t, c.Delete("a"))
	assert.False(t, c.Delete("a"), "second Delete finds nothing")
	_, ok = c.Get("a")
	assert.False(t, ok)
	assert.Equal(t, 1, c.Len())
}

func TestEvictionOrderIsSIEVE(t *testing.T) {
	c := newCache[string, int](t, Config{MaxEntries: 3})
	c.Set("a", 1)
	c.Set("b", 2)
	c.Set("c", 3)
	_, _ = c.Get("a") // a is visited: the hand spares it once

	c.Set("d", 4) // hand starts at the tail (a): spares a, evicts b
	assert.Equal(t, []string{"d", "c", "a"}, queue(c))

	c.Set("e", 5) // hand moved on to c, which was never read
	assert.Equal(t, []string{"e", "d", "a"}, queue(c))

	// A key that is read keeps surviving while one-hit keys stream past.
	for i := range 20 {
		_, ok := c.Get("a")
		require.True(t, ok, "a evicted at round %d", i)
		c.Set(fmt.Sprint("x", i), i)
	}
	assert.Equal(t, 3, c.Len())
	assert.Equal(t, uint64(22), c.Stats().Evictions)
}

func TestEvictionAllVisitedEvictsOldest(t *testing.T) {
	c := newCache[string, int](t, Config{MaxEntries: 3})
	for _, k := range []string{"a", "b", "c"} {
		c.Set(k, 0)
		_, _ = c.Get(k)
	}
	// Every entry is marked: the hand clears all marks in one lap and
	// evicts where it started, the oldest entry.
	c.Set("d", 0)
	assert.Equal(t, []string{"d", "c", "b"}, queue(c))
}

func TestOverwriteCountsAsUse(t *testing.T) {
	c := newCache[string, int](t, Config{MaxEntries: 2})
	c.Set("a", 1)
	c.Set("b", 2)
	c.Set("a", 3) // a is used again: it survives the next eviction
	c.Set("c", 4)
	assert.Equal(t, []string{"c", "a"}, queue(c))
}

// queue returns the keys of a single-shard cache in SIEVE queue order,
// newest first, without marking them.
func queue[K comparable, V any](c *Cache[K, V]) []K {
	s := &c.shards[0]
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []K
	for e := s.head; e != nil; e = e.next {
		out = append(out, e.key)
	}
	return out
}

// present returns, in order, those of keys the cache returns. Reading marks
// entries visited, so tests call it only where that does not matter or is
// intended.
func present[K comparable, V any](c *Cache[K, V], keys ...K) []K {
	var out []K
	for _, k := range keys {
		if _, ok := c.Get(k); ok {
			out = append(out, k)
		}
	}
	return out
}

func TestTTLExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, int](t, Config{TTL: time.Minute})
		c.Set("a", 1)
		time.Sleep(30 * time.Second)
		c.Set("b", 2)

		time.Sleep(30*time.Second - time.Nanosecond)
		_, ok := c.Get("a")
		assert.True(t, ok, "a is readable until its TTL has fully passed")
		time.Sleep(time.Nanosecond)
		_, ok = c.Get("a")
		assert.False(t, ok, "a expired after exactly one TTL")
		_, ok = c.Get("b")
		assert.True(t, ok, "b was stored 30s later")

		assert.Equal(t, 1, c.Len(), "the read that met a removed it")
		st := c.Stats()
		assert.Equal(t, uint64(1), st.Expirations)
		assert.Equal(t, uint64(0), st.Evictions)
	})
}

func TestSetRestartsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, int](t, Config{TTL: time.Minute})
		c.Set("a", 1)
		time.Sleep(50 * time.Second)
		c.Set("a", 2)
		time.Sleep(50 * time.Second)
		v, ok := c.Get("a")
		assert.True(t, ok)
		assert.Equal(t, 2, v)
	})
}

func TestSetWithTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, int](t, Config{TTL: time.Minute})
		c.SetWithTTL("short", 1, time.Second)
		c.SetWithTTL("long", 2, time.Hour)
		c.Set("default", 3)

		time.Sleep(time.Second)
		assert.Equal(t, []string{"long", "default"}, present(c, "short", "long", "default"))
		time.Sleep(time.Minute)
		assert.Equal(t, []string{"long"}, present(c, "short", "long", "default"))
		time.Sleep(time.Hour)
		assert.Empty(t, present(c, "short", "long", "default"))
		assert.Equal(t, uint64(3), c.Stats().Expirations)
		assert.Zero(t, c.Len())

		// A huge TTL does not overflow into the past.
		c.SetWithTTL("forever", 4, time.Duration(1<<63-1))
		time.Sleep(1000 * time.Hour)
		_, ok := c.Get("forever")
		assert.True(t, ok)
	})
}

func TestSetWithNonPositiveTTLRemoves(t *testing.T) {
	c := newCache[string, int](t, Config{})
	c.Set("a", 1)
	c.SetWithTTL("a", 2, 0)
	_, ok := c.Get("a")
	assert.False(t, ok)
	c.SetWithTTL("b", 2, -time.Second)
	_, ok = c.Get("b")
	assert.False(t, ok)
	assert.Zero(t, c.Len())
}

func TestEvictionReclaimsExpiredFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, int](t, Config{MaxEntries: 3, TTL: time.Hour})
		c.Set("a", 1)
		c.SetWithTTL("b", 2, time.Second)
		c.Set("c", 3)
		_, _ = c.Get("a")
		_, _ = c.Get("b")
		_, _ = c.Get("c")
		time.Sleep(2 * time.Second)

		// Every entry is visited, but b has expired: the hand takes b and
		// spares a, although a is older.
		c.Set("d", 4)
		st := c.Stats()
		assert.Equal(t, uint64(1), st.Expirations)
		assert.Equal(t, uint64(0), st.Evictions)
		assert.Equal(t, []string{"a", "c", "d"}, present(c, "a", "b", "c", "d"))
	})
}

func TestExpiredEntryReplacedOrDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, int](t, Config{TTL: time.Second})
		c.Set("a", 1)
		c.Set("b", 1)
		time.Sleep(time.Second)
		c.Set("a", 2)
		assert.False(t, c.Delete("b"), "an expired entry is not reported as deleted")
		assert.Equal(t, uint64(2), c.Stats().Expirations)
		v, ok := c.Get("a")
		assert.True(t, ok)
		assert.Equal(t, 2, v)
		assert.Equal(t, 1, c.Len())
	})
}

func TestStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[int, int](t, Config{MaxEntries: 2, TTL: time.Minute})
		assert.Zero(t, c.Stats().HitRatio())
		c.Set(1, 1)
		c.Set(2, 2)
		_, _ = c.Get(1) // hit
		_, _ = c.Get(1) // hit
		_, _ = c.Get(3) // miss
		c.Set(3, 3)     // evicts 2
		time.Sleep(time.Minute)
		_, _ = c.Get(1) // miss, expiration
		assert.Equal(t, Stats{Hits: 2, Misses: 2, Evictions: 1, Expirations: 1}, c.Stats())
		assert.InDelta(t, 0.5, c.Stats().HitRatio(), 1e-9)
	})
}

func TestPurge(t *testing.T) {
	c := newCache[int, int](t, Config{MaxEntries: 1000})
	for i := range 1000 {
		c.Set(i, i)
	}
	_, _ = c.Get(1)
	before := c.Stats()
	c.Purge()
	assert.Zero(t, c.Len())
	_, ok := c.Get(1)
	assert.False(t, ok)
	after := c.Stats()
	assert.Equal(t, before.Evictions, after.Evictions, "Purge is not eviction")
	assert.Equal(t, before.Hits, after.Hits)

	// The cache works normally after a Purge.
	for i := range 2000 {
		c.Set(i, i)
	}
	assert.LessOrEqual(t, c.Len(), 1000)
	v, ok := c.Get(1999)
	assert.True(t, ok)
	assert.Equal(t, 1999, v)
}

func TestShardCount(t *testing.T) {
	for _, tc := range []struct{ max, procs, want int }{
		{1, 8, 1},
		{127, 8, 1},
		{128, 8, 2},
		{10000, 2, 8},
		{10000, 64, 128},
		{1 << 20, 64, 256},
	} {
		assert.Equal(t, tc.want, shardCount(tc.max, tc.procs), "max %d procs %d", tc.max, tc.procs)
	}
}

func TestShardedCacheStaysBounded(t *testing.T) {
	c := newCache[int, int](t, Config{MaxEntries: 1000})
	require.Greater(t, len(c.shards), 1, "test needs several shards")
	total := 0
	for i := range c.shards {
		total += c.shards[i].capacity
	}
	assert.Equal(t, 1000, total, "shard capacities add up to MaxEntries")

	for i := range 10000 {
		c.Set(i, i)
	}
	assert.LessOrEqual(t, c.Len(), 1000)
	assert.Greater(t, c.Len(), 900, "shards fill evenly")
	st := c.Stats()
	assert.Equal(t, uint64(10000-c.Len()), st.Evictions)
	// The most recent keys are all present.
	for i := 9990; i < 10000; i++ {
		_, ok := c.Get(i)
		assert.True(t, ok, "key %d", i)
	}
}

func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxEntries = 256
		c := newCache[int, int](t, Config{MaxEntries: maxEntries, TTL: time.Second})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 1))
				for i := range 2000 {
					k := r.IntN(1000)
					switch r.IntN(10) {
					case 0:
						c.Delete(k)
					case 1, 2, 3:
						c.Set(k, k*2)
					case 4:
						c.SetWithTTL(k, k*2, time.Duration(1+r.IntN(3))*time.Second)
					default:
						if v, ok := c.Get(k); ok && v != k*2 {
							t.Errorf("Get(%d) = %d, want %d", k, v, k*2)
						}
					}
					if i%100 == 0 {
						time.Sleep(100 * time.Millisecond)
					}
					if i%500 == 0 {
						_ = c.Len()
						_ = c.Stats()
					}
				}
			})
		}
		wg.Wait()
		assert.LessOrEqual(t, c.Len(), maxEntries)
		for i := range c.shards {
			checkShard(t, &c.shards[i])
		}
	})
}

// checkShard verifies the shard's invariants: the list and the map hold
// the same entries, linked both ways, within capacity.
func checkShard[K comparable, V any](t *testing.T, s *shard[K, V]) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	var prev *entry[K, V]
	handSeen := s.hand == nil
	for e := s.head; e != nil; e = e.next {
		n++
		require.Same(t, prev, e.prev, "broken back link")
		require.Same(t, e, s.items[e.key], "list entry not in map")
		if e == s.hand {
			handSeen = true
		}
		prev = e
	}
	require.Same(t, prev, s.tail)
	require.Equal(t, len(s.items), n)
	require.LessOrEqual(t, n, s.capacity)
	require.True(t, handSeen, "hand points outside the list")
}

func TestInvalidConfigErrorMessages(t *testing.T) {
	_, err := New[int, int](Config{MaxEntries: -5})
	assert.EqualError(t, err, "cache: invalid config: MaxEntries is negative (-5)")
	assert.True(t, errors.Is(err, ErrInvalidConfig))
}

func TestNaNKeysAreNotStored(t *testing.T) {
	c := newCache[float64, int](t, Config{MaxEntries: 2})
	nan := math.NaN()
	for range 10 {
		c.Set(nan, 1)
	}
	c.Set(1, 1)
	c.Set(2, 2)
	c.Set(3, 3) // the shard stays consistent: this evicts a real key
	_, ok := c.Get(nan)
	assert.False(t, ok)
	assert.Equal(t, 2, c.Len())
	checkShard(t, &c.shards[0])

	type pair struct{ a, b float64 }
	pc := newCache[pair, int](t, Config{})
	pc.Set(pair{1, nan}, 1)
	assert.Zero(t, pc.Len())
}
