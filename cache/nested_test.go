package cache

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

// A key attached for the outer call ("page:team") must not key a call
// made inside it: the inner fallback stored alice's email under the outer
// key and answered bob's failed lookup with it.
func TestWithKeyPageTeamDoesNotKeyNestedFallbackCalls(t *testing.T) {
	outerCache := newCache[string, string](t, Config{})
	innerCache := newCache[string, string](t, Config{})
	lookup := func(id string, down bool) func(context.Context) (string, error) {
		return func(context.Context) (string, error) {
			if down {
				return "", errDown
			}
			return id + "@example.com", nil
		}
	}
	inner := func(fn func(context.Context) (string, error)) func(context.Context) (string, error) {
		return FallbackFunc[string](innerCache, AttachedKey[string], FallbackConfig{})(fn)
	}
	for _, tc := range []struct {
		name string
		ctx  func() context.Context
	}{
		{"the context WithKey returned", func() context.Context { return WithKey(context.Background(), "page:team") }},
		{"a context derived from it", func() context.Context {
			ctx, cancel := context.WithCancel(WithKey(context.Background(), "page:team"))
			t.Cleanup(cancel)
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			render := FallbackFunc[string](outerCache, AttachedKey[string], FallbackConfig{})(func(ctx context.Context) (string, error) {
				_, attached := AttachedKey[string](ctx)
				assert.False(t, attached)
				k, ok := KeyFrom[string](ctx)
				assert.True(t, ok)
				assert.Equal(t, "page:team", k, "KeyFrom still reads the call's key")
				a, err := inner(lookup("alice", false))(ctx)
				if err != nil {
					return "", err
				}
				b, err := inner(lookup("bob", true))(ctx)
				if err != nil {
					return "", err
				}
				return a + "," + b, nil
			})
			got, err := render(tc.ctx())
			require.ErrorIs(t, err, errDown, "got %q", got)
			_, stored := innerCache.Get("page:team")
			assert.False(t, stored, "an unkeyed nested call was stored under the outer key")
		})
	}
}

// A key attached inside the function, for the nested call, is that
// call's.
func TestWithKeyAttachedInsideFunctionKeysTheNestedCall(t *testing.T) {
	outerCache := newCache[string, string](t, Config{})
	innerCache := newCache[string, string](t, Config{})
	call := FallbackFunc[string](outerCache, AttachedKey[string], FallbackConfig{})(func(ctx context.Context) (string, error) {
		return FallbackFunc[string](innerCache, AttachedKey[string], FallbackConfig{})(func(context.Context) (string, error) {
			return "alice@example.com", nil
		})(WithKey(ctx, "user:alice"))
	})
	_, err := call(WithKey(context.Background(), "page:team"))
	require.NoError(t, err)
	v, ok := innerCache.Get("user:alice")
	assert.True(t, ok)
	assert.Equal(t, "alice@example.com", v)
	_, ok = outerCache.Get("page:team")
	assert.True(t, ok)
}

// A success whose Report says a value in it came from a cache (a nested
// call was answered by its fallback) is not stored: served later, it
// would pass for fresh.
func TestFallbackDoesNotStoreSuccessMadeOfCachedValue(t *testing.T) {
	c := newCache[string, string](t, Config{})
	madeOfCache := func(ctx context.Context) (string, error) {
		bulwark.ReportFrom(ctx).SetFromCache() // what a nested fallback does
		return "quote@t0", nil
	}
	ctx, report := bulwark.WithReport(context.Background())
	v, err := Fallback[string](c, "quote", FallbackConfig{})(madeOfCache)(ctx)
	require.NoError(t, err)
	assert.Equal(t, "quote@t0", v)
	assert.True(t, report.FromCache())
	_, stored := c.Get("quote")
	assert.False(t, stored, "Fallback stored a value made of a cached one")

	ctx, _ = bulwark.WithReport(context.Background())
	_, err = DoFallback(ctx, c, "quote", FallbackConfig{}, madeOfCache)
	require.NoError(t, err)
	_, stored = c.Get("quote")
	assert.False(t, stored, "DoFallback stored a value made of a cached one")

	// A fresh success is stored as before.
	ctx, _ = bulwark.WithReport(context.Background())
	_, err = DoFallback(ctx, c, "quote", FallbackConfig{}, func(context.Context) (string, error) { return "quote@t1", nil })
	require.NoError(t, err)
	v, stored = c.Get("quote")
	assert.True(t, stored)
	assert.Equal(t, "quote@t1", v)
}
