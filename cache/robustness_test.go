package cache

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

const forever = time.Duration(math.MaxInt64)

// century is a long virtual wait, well inside what the clock can hold.
const century = 100 * 365 * 24 * time.Hour

// Every duration of the package set to math.MaxInt64 means "as long as
// possible": nothing is born expired, nothing wraps around.
func TestDurationsAtMaxInt64(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Config.TTL", func(t *testing.T) {
			c := newCache[string, int](t, Config{TTL: forever})
			time.Sleep(time.Hour) // now > 0: now+TTL overflows int64
			c.Set("k", 1)
			time.Sleep(century)
			v, ok := c.Get("k")
			assert.True(t, ok, "an entry with TTL MaxInt64 never expires")
			assert.Equal(t, 1, v)
			assert.Zero(t, c.Stats().Expirations)
		}},
		{"SetWithTTL", func(t *testing.T) {
			c := newCache[string, int](t, Config{TTL: time.Minute})
			time.Sleep(time.Hour)
			c.SetWithTTL("k", 1, forever)
			c.SetWithTTL("almost", 2, forever-time.Second)
			time.Sleep(century)
			assert.Equal(t, []string{"k", "almost"}, present(c, "k", "almost"))
			assert.Zero(t, c.Stats().Expirations)
		}},
		{"SetWithTTL overwriting a short entry", func(t *testing.T) {
			c := newCache[string, int](t, Config{TTL: time.Minute})
			c.Set("k", 1)
			time.Sleep(time.Hour)
			c.SetWithTTL("k", 2, forever)
			time.Sleep(century)
			v, ok := c.Get("k")
			assert.True(t, ok)
			assert.Equal(t, 2, v)
		}},
		{"FallbackConfig.MaxAge", func(t *testing.T) {
			c := newCache[string, page](t, Config{TTL: forever})
			mw := Fallback[page](c, "k", FallbackConfig{MaxAge: forever})
			svc := &service{value: page{"p", 1}}
			call := mw(svc.call)
			time.Sleep(time.Hour)
			_, err := call(context.Background())
			require.NoError(t, err)
			svc.err = errDown
			time.Sleep(century)
			ctx, report := bulwark.WithReport(context.Background())
			v, err := call(ctx)
			require.NoError(t, err, "a value a century old is served under MaxAge MaxInt64")
			assert.Equal(t, page{"p", 1}, v)
			assert.True(t, report.FromCache())
		}},
		{"FallbackConfig.MaxAge under a finite TTL", func(t *testing.T) {
			c := newCache[string, page](t, Config{TTL: time.Minute})
			svc := &service{value: page{"p", 1}}
			_, err := DoFallback(context.Background(), c, "k", FallbackConfig{MaxAge: forever}, svc.call)
			require.NoError(t, err)
			svc.err = errDown
			time.Sleep(time.Minute)
			_, err = DoFallback(context.Background(), c, "k", FallbackConfig{MaxAge: forever}, svc.call)
			assert.ErrorIs(t, err, errDown, "the cache's TTL still applies")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { synctest.Test(t, tc.run) })
	}
}

// locksFree asserts that no shard lock of c is held.
func locksFree[K comparable, V any](t *testing.T, c *Cache[K, V], msg string) {
	t.Helper()
	for i := range c.shards {
		s := &c.shards[i]
		if assert.True(t, s.mu.TryLock(), "%s: shard %d is still locked", msg, i) {
			s.mu.Unlock()
		}
	}
}

type mixedKey struct {
	name string
	part any
}

// A key that panics when compared (an interface or struct holding a
// slice) makes the call panic, like a map's, but leaves no lock held, in a
// single-shard cache as in a sharded one.
func TestUncomparableKeyPanicLeavesCacheUsable(t *testing.T) {
	for _, maxEntries := range []int{10, 100000} {
		t.Run(strconv.Itoa(maxEntries), func(t *testing.T) {
			c := newCache[any, int](t, Config{MaxEntries: maxEntries})
			c.Set("ok", 1)
			bad := []int{1}
			for name, op := range map[string]func(){
				"Get":        func() { c.Get(bad) },
				"Set":        func() { c.Set(bad, 1) },
				"SetWithTTL": func() { c.SetWithTTL(bad, 1, time.Minute) },
				"Delete":     func() { c.Delete(bad) },
				"fallback key": func() {
					mw := FallbackFunc[int](c, func(context.Context) (any, bool) { return bad, true }, FallbackConfig{})
					_, _ = mw(func(context.Context) (int, error) { return 0, errDown })(context.Background())
				},
			} {
				assert.Panics(t, op, name)
				locksFree(t, c, name)
				c.Set("after "+name, 2)
				v, ok := c.Get("ok")
				assert.True(t, ok, name)
				assert.Equal(t, 1, v, name)
			}
			assert.Equal(t, 6, c.Len())
		})
	}
	t.Run("struct key holding a slice", func(t *testing.T) {
		c := newCache[mixedKey, int](t, Config{MaxEntries: 10})
		require.True(t, c.checkKey)
		assert.Panics(t, func() { c.Get(mixedKey{"a", []int{1}}) })
		locksFree(t, c, "Get")
		c.Set(mixedKey{"a", 1}, 1)
		_, ok := c.Get(mixedKey{"a", 1})
		assert.True(t, ok)
	})
	t.Run("only keys that can panic are checked", func(t *testing.T) {
		assert.False(t, newCache[string, int](t, Config{MaxEntries: 10}).checkKey)
		assert.False(t, newCache[[2]int, int](t, Config{MaxEntries: 10}).checkKey)
		assert.True(t, newCache[[1]any, int](t, Config{MaxEntries: 10}).checkKey)
		assert.False(t, newCache[any, int](t, Config{MaxEntries: 100000}).checkKey, "a sharded cache's hash panics first")
	})
}

// Each user callback of the fallback panics once: the panic reaches the
// caller, no lock is left held, and the next call through the same
// middleware works normally.
func TestFallbackCallbackPanicsLeaveNothingHeld(t *testing.T) {
	for _, maxEntries := range []int{10, 100000} {
		for _, name := range []string{"When", "key", "OnEvent"} {
			t.Run(name+"/"+strconv.Itoa(maxEntries), func(t *testing.T) {
				c := newCache[string, page](t, Config{MaxEntries: maxEntries})
				armed := true
				boom := func(what string) {
					if armed && what == name {
						panic("callback exploded")
					}
				}
				var served int
				cfg := FallbackConfig{
					When:    func(error) bool { boom("When"); return true },
					OnEvent: func(bulwark.Event) { boom("OnEvent"); served++ },
				}
				key := func(context.Context) (string, bool) { boom("key"); return "k", true }
				svc := &service{value: page{"p", 1}}
				call := FallbackFunc[page](c, key, cfg)(svc.call)
				armed = false
				_, err := call(context.Background()) // stores p
				require.NoError(t, err)

				armed = true
				svc.err = errDown
				assert.PanicsWithValue(t, "callback exploded", func() { _, _ = call(context.Background()) })
				locksFree(t, c, name)

				armed = false
				v, err := call(context.Background())
				require.NoError(t, err, "the next call is served as usual")
				assert.Equal(t, page{"p", 1}, v)
				assert.Equal(t, 1, served)

				if name == "key" {
					return // DoFallback takes its key as a value
				}
				armed = true
				assert.PanicsWithValue(t, "callback exploded", func() { _, _ = DoFallback(context.Background(), c, "k", cfg, svc.call) })
				locksFree(t, c, "DoFallback "+name)
				armed = false
				v, err = DoFallback(context.Background(), c, "k", cfg, svc.call)
				require.NoError(t, err)
				assert.Equal(t, page{"p", 1}, v)
				assert.Equal(t, 2, served)
			})
		}
	}
}

func TestNilFunctionsWrapErrInvalid(t *testing.T) {
	c := newCache[string, int](t, Config{})
	c.Set("k", 1)
	ctx, report := bulwark.WithReport(context.Background())
	events := 0
	cfg := FallbackConfig{OnEvent: func(bulwark.Event) { events++ }}
	before := c.Stats()

	for name, call := range map[string]func() (int, error){
		"Fallback nil next":     func() (int, error) { return Fallback[int](c, "k", cfg)(nil)(ctx) },
		"FallbackFunc nil next": func() (int, error) { return FallbackFunc[int](c, AttachedKey[string], cfg)(nil)(WithKey(ctx, "k")) },
		"FallbackFunc nil key": func() (int, error) {
			return FallbackFunc[int](c, nil, cfg)(func(context.Context) (int, error) { return 2, nil })(ctx)
		},
		"DoFallback nil fn":       func() (int, error) { return DoFallback[int](ctx, c, "k", cfg, nil) },
		"Fallback nil cache":      func() (int, error) { return Fallback[int]((*Cache[string, int])(nil), "k", cfg)(nil)(ctx) },
		"DoFallback nil cache":    func() (int, error) { return DoFallback[int](ctx, (*Cache[string, int])(nil), "k", cfg, nil) },
		"Fallback invalid config": func() (int, error) { return Fallback[int](c, "k", FallbackConfig{MaxAge: -1})(nil)(ctx) },
	} {
		var (
			v   int
			err error
		)
		require.NotPanics(t, func() { v, err = call() }, name)
		assert.ErrorIs(t, err, ErrInvalid, name)
		assert.Zero(t, v, name)
	}
	assert.Equal(t, before, c.Stats(), "nothing read or counted")
	assert.Equal(t, 1, c.Len())
	v, _ := c.Get("k")
	assert.Equal(t, 1, v, "nothing stored")
	assert.Zero(t, events)
	assert.False(t, report.FromCache())

	_, err := New[string, int](Config{MaxEntries: -1})
	assert.ErrorIs(t, err, ErrInvalid, "a Config error is an ErrInvalid too")
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Equal(t, "cache: invalid config", ErrInvalidConfig.Error())
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A cache's memory is bounded by MaxEntries, whatever the sequence of
// operations: 1e6 operations over distinct keys with short, long and
// MaxInt64 TTLs, reads, overwrites and deletes leave the heap where a
// full cache puts it.
func TestMemoryBoundedUnderChurn(t *testing.T) {
	ops := 1_000_000
	if raceEnabled {
		ops = 100_000
	}
	for _, maxEntries := range []int{100, 4096} {
		t.Run(strconv.Itoa(maxEntries), func(t *testing.T) {
			c := newCache[string, []byte](t, Config{MaxEntries: maxEntries, TTL: time.Hour})
			rng := rand.New(rand.NewPCG(1, 2))
			key := make([]byte, 0, 32)
			churn := func(n int, base int) {
				for i := range n {
					key = strconv.AppendInt(append(key[:0], "key-"...), int64(base+i), 10)
					k := string(key) // a distinct key every time
					switch r := rng.IntN(10); {
					case r < 4:
						c.Set(k, make([]byte, 64))
					case r < 6:
						c.SetWithTTL(k, make([]byte, 64), forever)
					case r < 7:
						c.SetWithTTL(k, make([]byte, 64), time.Duration(rng.Int64()))
					case r < 8:
						c.SetWithTTL(k, make([]byte, 64), time.Nanosecond)
					case r < 9:
						c.Get(k)
					default:
						c.Delete(k)
					}
				}
			}
			churn(4*maxEntries, 0) // fill: the cache's own size is the baseline
			before := heapInUse()
			churn(ops, 1<<40)
			after := heapInUse()

			assert.LessOrEqual(t, c.Len(), maxEntries)
			// An entry here is ~200 B; a leak of even 1% of the
			// operations would exceed the bound by far.
			bound := uint64(512 << 10)
			if after > before {
				assert.Less(t, after-before, bound, "heap grew from %d to %d bytes after %d operations", before, after, ops)
			}
			runtime.KeepAlive(c)
		})
	}
}
