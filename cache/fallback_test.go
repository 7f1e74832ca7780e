package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type page struct {
	Title string
	Views int
}

// service is a fake remote call whose next result the test sets.
type service struct {
	calls int
	value page
	err   error
}

func (s *service) call(context.Context) (page, error) {
	s.calls++
	return s.value, s.err
}

var errDown = errors.New("service down")

func rejection() error { return fmt.Errorf("breaker: circuit open: %w", bulwark.ErrRejected) }

// recorder collects events.
type recorder struct{ events []bulwark.Event }

func (r *recorder) listen(e bulwark.Event) { r.events = append(r.events, e) }

func TestFallbackServesCachedValueOnRejection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, page](t, Config{})
		var rec recorder
		svc := &service{value: page{"home", 1}}
		call := Fallback[page](c, "home", FallbackConfig{OnEvent: rec.listen})(svc.call)

		v, err := call(context.Background())
		require.NoError(t, err)
		assert.Equal(t, page{"home", 1}, v)
		assert.Empty(t, rec.events, "no event on success")

		time.Sleep(90 * time.Second)
		rejected := rejection()
		svc.value, svc.err = page{}, rejected
		ctx, report := bulwark.WithReport(context.Background())
		v, err = call(ctx)
		require.NoError(t, err)
		assert.Equal(t, page{"home", 1}, v)
		assert.True(t, report.FromCache())
		assert.Equal(t, 2, svc.calls, "the wrapped call ran; the fallback answered its failure")

		require.Len(t, rec.events, 1)
		ev := rec.events[0]
		assert.Equal(t, bulwark.FallbackUsed, ev.Kind)
		assert.Same(t, rejected, ev.Err, "Err is the original error")
		assert.Equal(t, 90*time.Second, ev.Duration, "Duration is the value's age")
		assert.Equal(t, time.Now(), ev.Time)
	})
}

func TestFallbackDoesNotServeOnSuccess(t *testing.T) {
	c := newCache[string, page](t, Config{})
	var rec recorder
	svc := &service{value: page{"v1", 1}}
	call := Fallback[page](c, "k", FallbackConfig{OnEvent: rec.listen})(svc.call)
	_, err := call(context.Background())
	require.NoError(t, err)

	svc.value = page{"v2", 2}
	ctx, report := bulwark.WithReport(context.Background())
	v, err := call(ctx)
	require.NoError(t, err)
	assert.Equal(t, page{"v2", 2}, v, "a success returns the fresh value")
	assert.False(t, report.FromCache())
	assert.Empty(t, rec.events)

	stored, ok := c.Get("k")
	assert.True(t, ok)
	assert.Equal(t, page{"v2", 2}, stored, "every success refreshes the cache")
}

func TestFallbackReturnsErrorWhenNothingCached(t *testing.T) {
	c := newCache[string, page](t, Config{})
	var rec recorder
	partial := page{"partial", 0}
	svc := &service{value: partial, err: errDown}
	call := Fallback[page](c, "k", FallbackConfig{OnEvent: rec.listen})(svc.call)

	ctx, report := bulwark.WithReport(context.Background())
	v, err := call(ctx)
	assert.Same(t, errDown, err, "the original error, unchanged")
	assert.Equal(t, partial, v, "the wrapped call's own result")
	assert.False(t, report.FromCache())
	assert.Empty(t, rec.events)
}

func TestFallbackRespectsMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, page](t, Config{TTL: time.Hour})
		svc := &service{value: page{"p", 1}}
		call := Fallback[page](c, "k", FallbackConfig{MaxAge: time.Minute})(svc.call)
		_, err := call(context.Background())
		require.NoError(t, err)

		svc.err = errDown
		time.Sleep(time.Minute - time.Nanosecond)
		v, err := call(context.Background())
		require.NoError(t, err, "just younger than MaxAge: served")
		assert.Equal(t, page{"p", 1}, v)

		time.Sleep(time.Nanosecond)
		ctx, report := bulwark.WithReport(context.Background())
		_, err = call(ctx)
		assert.Same(t, errDown, err, "MaxAge old: not served")
		assert.False(t, report.FromCache())

		got, ok := c.Get("k")
		assert.True(t, ok, "the entry is still in the cache for its TTL")
		assert.Equal(t, page{"p", 1}, got)
	})
}

func TestFallbackDefaultMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, page](t, Config{TTL: time.Hour})
		svc := &service{value: page{"p", 1}}
		call := Fallback[page](c, "k", FallbackConfig{})(svc.call)
		_, _ = call(context.Background())
		svc.err = errDown

		time.Sleep(DefaultMaxAge - time.Nanosecond)
		_, err := call(context.Background())
		assert.NoError(t, err)
		time.Sleep(time.Nanosecond)
		_, err = call(context.Background())
		assert.Same(t, errDown, err, "MaxAge defaults to 5m")
	})
}

func TestFallbackRespectsCacheTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, page](t, Config{TTL: time.Second})
		svc := &service{value: page{"p", 1}}
		call := Fallback[page](c, "k", FallbackConfig{MaxAge: time.Hour})(svc.call)
		_, _ = call(context.Background())
		svc.err = errDown
		time.Sleep(time.Second)
		_, err := call(context.Background())
		assert.Same(t, errDown, err, "an expired entry is never served, whatever MaxAge says")
	})
}

func TestFallbackWhen(t *testing.T) {
	c := newCache[string, page](t, Config{})
	svc := &service{value: page{"p", 1}}
	call := Fallback[page](c, "k", FallbackConfig{When: OnlyRejections})(svc.call)
	_, err := call(context.Background())
	require.NoError(t, err)

	svc.err = errDown
	_, err = call(context.Background())
	assert.Same(t, errDown, err, "a plain failure is not a rejection")

	svc.err = rejection()
	v, err := call(context.Background())
	require.NoError(t, err)
	assert.Equal(t, page{"p", 1}, v)

	// A custom predicate sees the original error.
	var seen []error
	call = Fallback[page](c, "k", FallbackConfig{When: func(err error) bool {
		seen = append(seen, err)
		return errors.Is(err, context.DeadlineExceeded)
	}})(svc.call)
	svc.err = errDown
	_, err = call(context.Background())
	assert.Same(t, errDown, err)
	svc.err = fmt.Errorf("slow: %w", context.DeadlineExceeded)
	_, err = call(context.Background())
	assert.NoError(t, err)
	assert.Equal(t, []error{errDown, svc.err}, seen)
}

func TestOnlyRejections(t *testing.T) {
	assert.True(t, OnlyRejections(bulwark.ErrRejected))
	assert.True(t, OnlyRejections(rejection()))
	assert.False(t, OnlyRejections(errDown))
	assert.False(t, OnlyRejections(nil))
}

func TestSkipFallback(t *testing.T) {
	c := newCache[string, page](t, Config{})
	svc := &service{value: page{"p", 1}}
	call := Fallback[page](c, "k", FallbackConfig{})(svc.call)
	_, err := call(context.Background())
	require.NoError(t, err)

	// A skipped success is not stored.
	svc.value = page{"payment", 2}
	v, err := call(SkipFallback(context.Background()))
	require.NoError(t, err)
	assert.Equal(t, page{"payment", 2}, v)
	stored, _ := c.Get("k")
	assert.Equal(t, page{"p", 1}, stored, "a skipped call stores nothing")

	// A skipped failure is not answered from the cache.
	svc.err = errDown
	ctx, report := bulwark.WithReport(SkipFallback(context.Background()))
	_, err = call(ctx)
	assert.Same(t, errDown, err)
	assert.False(t, report.FromCache())

	// Without the skip the same failure is answered.
	v, err = call(context.Background())
	require.NoError(t, err)
	assert.Equal(t, page{"p", 1}, v)
}

func TestFallbackFuncPerCallKeys(t *testing.T) {
	c := newCache[string, page](t, Config{})
	svc := &service{}
	call := FallbackFunc[page](c, AttachedKey[string], FallbackConfig{})(svc.call)

	for _, k := range []string{"a", "b"} {
		svc.value = page{k, 1}
		_, err := call(WithKey(context.Background(), k))
		require.NoError(t, err)
	}
	svc.value = page{"unkeyed", 1}
	_, err := call(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, c.Len(), "a call without a key stores nothing")

	svc.err = errDown
	for _, k := range []string{"a", "b"} {
		v, err := call(WithKey(context.Background(), k))
		require.NoError(t, err)
		assert.Equal(t, page{k, 1}, v, "each key serves its own value")
	}
	_, err = call(WithKey(context.Background(), "c"))
	assert.Same(t, errDown, err, "a key with nothing cached")
	_, err = call(context.Background())
	assert.Same(t, errDown, err, "a call without a key gets no fallback")
}

// shape is implemented by two result types that share one cache.
type shape interface{ area() int }

type square struct{ side int }
type rect struct{ w, h int }

func (s square) area() int { return s.side * s.side }
func (r rect) area() int   { return r.w * r.h }

func TestFallbackSharedCacheAcrossResultTypes(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"any", func(t *testing.T) { testSharedCache(t, newCache[string, any](t, Config{})) }},
		{"interface", func(t *testing.T) { testSharedCache(t, newCache[string, shape](t, Config{})) }},
	} {
		t.Run(tc.name, tc.run)
	}
}

func testSharedCache[V any](t *testing.T, c *Cache[string, V]) {
	sq := Fallback[square](c, "square", FallbackConfig{})
	rc := Fallback[rect](c, "rect", FallbackConfig{})
	_, err := sq(func(context.Context) (square, error) { return square{3}, nil })(context.Background())
	require.NoError(t, err)
	_, err = rc(func(context.Context) (rect, error) { return rect{2, 5}, nil })(context.Background())
	require.NoError(t, err)

	s, err := sq(func(context.Context) (square, error) { return square{}, errDown })(context.Background())
	require.NoError(t, err)
	assert.Equal(t, square{3}, s)
	r, err := rc(func(context.Context) (rect, error) { return rect{}, errDown })(context.Background())
	require.NoError(t, err)
	assert.Equal(t, rect{2, 5}, r)

	// A key holding a value of another type is not served as this one.
	wrong := Fallback[rect](c, "square", FallbackConfig{})
	ctx, report := bulwark.WithReport(context.Background())
	_, err = wrong(func(context.Context) (rect, error) { return rect{}, errDown })(ctx)
	assert.Same(t, errDown, err)
	assert.False(t, report.FromCache())
}

func TestFallbackInterfaceResultType(t *testing.T) {
	// T may itself be an interface type stored in a cache of any.
	c := newCache[string, any](t, Config{})
	mw := Fallback[shape](c, "k", FallbackConfig{})
	_, err := mw(func(context.Context) (shape, error) { return square{2}, nil })(context.Background())
	require.NoError(t, err)
	v, err := mw(func(context.Context) (shape, error) { return nil, errDown })(context.Background())
	require.NoError(t, err)
	assert.Equal(t, square{2}, v)
}

func TestFallbackConfigErrors(t *testing.T) {
	intCache := newCache[string, int](t, Config{})
	shapeCache := newCache[string, shape](t, Config{})
	pageCache := newCache[string, page](t, Config{})
	for _, tc := range []struct {
		name    string
		mw      bulwark.Middleware[page]
		is      error
		message string
	}{
		{"type mismatch", Fallback[page](intCache, "k", FallbackConfig{}), ErrTypeMismatch, "cache.page cannot be stored in a cache of int"},
		{"interface not implemented", Fallback[page](shapeCache, "k", FallbackConfig{}), ErrTypeMismatch, "cache.shape"},
		{"negative MaxAge", Fallback[page](pageCache, "k", FallbackConfig{MaxAge: -1}), ErrInvalidConfig, "FallbackConfig.MaxAge"},
		{"nil cache", Fallback[page]((*Cache[string, page])(nil), "k", FallbackConfig{}), ErrInvalidConfig, "nil *Cache"},
		{"nil key func", FallbackFunc[page](pageCache, nil, FallbackConfig{}), ErrInvalidConfig, "nil key function"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &service{value: page{"p", 1}}
			_, err := tc.mw(svc.call)(context.Background())
			assert.ErrorIs(t, err, tc.is)
			assert.ErrorContains(t, err, tc.message)
			assert.Zero(t, svc.calls, "a misconfigured fallback does not run the call")
		})
	}
	assert.NoError(t, FallbackConfig{}.Validate())
	assert.ErrorIs(t, FallbackConfig{MaxAge: -time.Second}.Validate(), ErrInvalidConfig)
}

func TestFallbackPanicPropagates(t *testing.T) {
	c := newCache[string, page](t, Config{})
	call := Fallback[page](c, "k", FallbackConfig{})(func(context.Context) (page, error) { panic("boom") })
	assert.PanicsWithValue(t, "boom", func() { _, _ = call(context.Background()) })
	// The cache is untouched and still usable.
	assert.Zero(t, c.Len())
	c.Set("k", page{"p", 1})
	_, ok := c.Get("k")
	assert.True(t, ok)
}

func TestFallbackListenerMayUseCache(t *testing.T) {
	// The listener runs outside any cache lock, so it may call back in.
	c := newCache[string, page](t, Config{})
	var lenSeen int
	cfg := FallbackConfig{OnEvent: func(bulwark.Event) { c.Set("other", page{}); lenSeen = c.Len() }}
	svc := &service{value: page{"p", 1}}
	call := Fallback[page](c, "k", cfg)(svc.call)
	_, _ = call(context.Background())
	svc.err = errDown
	_, err := call(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, lenSeen)
}

func TestFallbackAllocations(t *testing.T) {
	c := newCache[string, page](t, Config{})
	ok := func(context.Context) (page, error) { return page{"p", 1}, nil }
	fail := func(context.Context) (page, error) { return page{}, errDown }
	success := Fallback[page](c, "k", FallbackConfig{})(ok)
	failure := Fallback[page](c, "k", FallbackConfig{})(fail)
	ctx := context.Background()
	_, _ = success(ctx)

	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = success(ctx) }), "success path, key present")
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		if _, err := failure(ctx); err != nil {
			t.Fatal(err)
		}
	}), "serve path without listener")

	keyed := FallbackFunc[page](c, AttachedKey[string], FallbackConfig{})(ok)
	kctx := WithKey(ctx, "k")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = keyed(kctx) }), "per-call key from the context")
}

func TestDoFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache[string, any](t, Config{})
		var rec recorder
		cfg := FallbackConfig{MaxAge: time.Minute, OnEvent: rec.listen}
		svc := &service{value: page{"p", 1}}

		v, err := DoFallback(context.Background(), c, "k", cfg, svc.call)
		require.NoError(t, err)
		assert.Equal(t, page{"p", 1}, v)
		stored, _ := c.Get("k")
		assert.Equal(t, page{"p", 1}, stored)

		time.Sleep(30 * time.Second)
		svc.err = errDown
		ctx, report := bulwark.WithReport(context.Background())
		v, err = DoFallback(ctx, c, "k", cfg, svc.call)
		require.NoError(t, err)
		assert.Equal(t, page{"p", 1}, v)
		assert.True(t, report.FromCache())
		require.Len(t, rec.events, 1)
		assert.Equal(t, 30*time.Second, rec.events[0].Duration)

		_, err = DoFallback(SkipFallback(context.Background()), c, "k", cfg, svc.call)
		assert.Same(t, errDown, err, "skipped")
		_, err = DoFallback(context.Background(), c, "other", cfg, svc.call)
		assert.Same(t, errDown, err, "nothing cached under other")
		_, err = DoFallback(context.Background(), c, "k", FallbackConfig{When: OnlyRejections}, svc.call)
		assert.Same(t, errDown, err, "When does not match")

		time.Sleep(30 * time.Second)
		_, err = DoFallback(context.Background(), c, "k", cfg, svc.call)
		assert.Same(t, errDown, err, "too old")
		assert.Equal(t, 6, svc.calls)
	})
}

func TestDoFallbackConfigErrors(t *testing.T) {
	svc := &service{value: page{"p", 1}}
	_, err := DoFallback(context.Background(), newCache[string, int](t, Config{}), "k", FallbackConfig{}, svc.call)
	assert.ErrorIs(t, err, ErrTypeMismatch)
	_, err = DoFallback(context.Background(), newCache[string, page](t, Config{}), "k", FallbackConfig{MaxAge: -1}, svc.call)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = DoFallback(context.Background(), (*Cache[string, page])(nil), "k", FallbackConfig{}, svc.call)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Zero(t, svc.calls, "a misconfigured DoFallback does not run fn")
}

func TestDoFallbackAllocations(t *testing.T) {
	c := newCache[string, page](t, Config{})
	ctx := context.Background()
	cfg := FallbackConfig{}
	_, _ = DoFallback(ctx, c, "k", cfg, okPage)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = DoFallback(ctx, c, "k", cfg, okPage) }), "success")
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		if _, err := DoFallback(ctx, c, "k", cfg, failPage); err != nil {
			t.Fatal(err)
		}
	}), "served")
}

func TestFits(t *testing.T) {
	assert.NoError(t, fits[page, page]())
	assert.NoError(t, fits[page, any]())
	assert.NoError(t, fits[square, shape]())
	assert.NoError(t, fits[shape, any]())
	assert.NoError(t, fits[*page, any]())
	assert.ErrorIs(t, fits[page, shape](), ErrTypeMismatch)
	assert.ErrorIs(t, fits[any, page](), ErrTypeMismatch, "an any result cannot fill a typed cache")
	assert.ErrorIs(t, fits[any, shape](), ErrTypeMismatch)
	assert.ErrorIs(t, fits[int, int64](), ErrTypeMismatch)
}

func TestFallbackConcurrent(t *testing.T) {
	c := newCache[string, any](t, Config{MaxEntries: 64})
	var events atomic.Int64
	cfg := FallbackConfig{OnEvent: func(bulwark.Event) { events.Add(1) }}
	call := FallbackFunc[int](c, AttachedKey[string], cfg)(func(ctx context.Context) (int, error) {
		k, _ := KeyFrom[string](ctx)
		n, _ := strconv.Atoi(k)
		if n%2 == 1 {
			return 0, errDown
		}
		return n, nil
	})
	// Seed the odd keys so that their failures can be served.
	for i := 1; i < 32; i += 2 {
		c.Set(strconv.Itoa(i), i)
	}
	var served atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				k := (g + i) % 32
				v, err := call(WithKey(context.Background(), strconv.Itoa(k)))
				if err != nil {
					t.Errorf("key %d: %v", k, err)
					return
				}
				if v != k {
					t.Errorf("key %d: got %d", k, v)
					return
				}
				if k%2 == 1 {
					served.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(2000), served.Load())
	assert.Equal(t, served.Load(), events.Load())
}

func TestFallbackCallbackPanicsPropagate(t *testing.T) {
	c := newCache[string, page](t, Config{})
	c.Set("k", page{"p", 1})
	for name, mw := range map[string]bulwark.Middleware[page]{
		"When":    Fallback[page](c, "k", FallbackConfig{When: func(error) bool { panic(name0) }}),
		"OnEvent": Fallback[page](c, "k", FallbackConfig{OnEvent: func(bulwark.Event) { panic(name0) }}),
		"key":     FallbackFunc[page](c, func(context.Context) (string, bool) { panic(name0) }, FallbackConfig{}),
	} {
		assert.PanicsWithValue(t, name0, func() { _, _ = mw(failPage)(context.Background()) }, name)
		// No lock is left held: the cache still reads and writes.
		c.Set("other", page{})
		_, ok := c.Get("k")
		assert.True(t, ok, name)
	}
}

const name0 = "callback panic"

// Fallback hashes its fixed key to a shard once; the values it stores and
// serves must be those of the key's shard, as Get and Set see them.
func TestFallbackFixedKeysFindTheirShards(t *testing.T) {
	c := newCache[string, int](t, Config{})
	require.Greater(t, len(c.shards), 1, "the test needs a sharded cache")
	for i := range 200 {
		key := "key-" + strconv.Itoa(i)
		mw := Fallback[int](c, key, FallbackConfig{})
		v, err := mw(func(context.Context) (int, error) { return i, nil })(context.Background())
		require.NoError(t, err)
		require.Equal(t, i, v)
		got, ok := c.Get(key)
		require.True(t, ok, "Get does not find what the fallback stored under %q", key)
		require.Equal(t, i, got)

		c.Set(key, i+1000)
		v, err = mw(func(context.Context) (int, error) { return 0, errDown })(context.Background())
		require.NoError(t, err, "the fallback does not serve what Set stored under %q", key)
		require.Equal(t, i+1000, v)
	}
}

// A fixed key that a cache cannot hold behaves as with FallbackFunc: a NaN
// is never stored, and a key of an interface type holding an uncomparable
// value panics at each call, like a map's, not when the middleware is built.
func TestFallbackFixedKeysThatCannotBeStored(t *testing.T) {
	t.Run("NaN", func(t *testing.T) {
		c := newCache[float64, int](t, Config{})
		mw := Fallback[int](c, math.NaN(), FallbackConfig{})
		v, err := mw(func(context.Context) (int, error) { return 1, nil })(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.Zero(t, c.Len())
		_, err = mw(func(context.Context) (int, error) { return 0, errDown })(context.Background())
		assert.ErrorIs(t, err, errDown)
	})
	t.Run("uncomparable", func(t *testing.T) {
		c := newCache[any, int](t, Config{})
		var mw bulwark.Middleware[int]
		require.NotPanics(t, func() { mw = Fallback[int](c, any([]int{1}), FallbackConfig{}) })
		call := mw(func(context.Context) (int, error) { return 1, nil })
		assert.Panics(t, func() { _, _ = call(context.Background()) })
		assert.Zero(t, c.Len())
	})
}
