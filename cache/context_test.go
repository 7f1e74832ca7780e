package cache

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

type otherKey string

func TestWithKeyKeyFrom(t *testing.T) {
	ctx := context.Background()
	_, ok := KeyFrom[string](ctx)
	assert.False(t, ok)

	ctx = WithKey(ctx, "a")
	k, ok := KeyFrom[string](ctx)
	assert.True(t, ok)
	assert.Equal(t, "a", k)

	// Keys of different types do not see each other.
	_, ok = KeyFrom[otherKey](ctx)
	assert.False(t, ok)
	ctx = WithKey(ctx, otherKey("o"))
	ok2, _ := KeyFrom[otherKey](ctx)
	assert.Equal(t, otherKey("o"), ok2)
	k, _ = KeyFrom[string](ctx)
	assert.Equal(t, "a", k, "the string key is still visible under the other one")

	// The innermost key of a type wins; other values pass through.
	type vk struct{}
	ctx = context.WithValue(WithKey(ctx, "b"), vk{}, 1)
	k, _ = KeyFrom[string](ctx)
	assert.Equal(t, "b", k)
	assert.Equal(t, 1, ctx.Value(vk{}))
}

var sinkCtx context.Context

func TestContextHelperAllocations(t *testing.T) {
	base := context.Background()
	key := "some-key"
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { sinkCtx = WithKey(base, key) }))
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { sinkCtx = SkipFallback(base) }))
	ctx := WithKey(base, key)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = KeyFrom[string](ctx) }))
}

func TestSkipped(t *testing.T) {
	assert.False(t, skipped(context.Background()))
	assert.True(t, skipped(SkipFallback(context.Background())))
	assert.True(t, skipped(WithKey(SkipFallback(context.Background()), "k")))
}
