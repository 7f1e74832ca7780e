package idempotency_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
)

func TestMiddlewareWithoutKeyRunsDirectly(t *testing.T) {
	m := newManager(t, nil, idempotency.Config{})
	var runs atomic.Int32
	call := idempotency.Middleware[int](m, nil)(counted(&runs, value(1)))
	for range 2 {
		ctx, report := bulwark.WithReport(context.Background())
		v, err := call(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.False(t, report.Replayed())
	}
	assert.Equal(t, int32(2), runs.Load(), "no key, no idempotency")
}

func TestMiddlewareWithKeyFromContext(t *testing.T) {
	m := newManager(t, nil, idempotency.Config{})
	var runs atomic.Int32
	call := idempotency.Middleware[string](m, nil)(counted(&runs, value("ok")))

	ctx, report := bulwark.WithReport(idempotency.WithKey(context.Background(), "order-1"))
	v, err := call(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", v)
	assert.False(t, report.Replayed())

	ctx, report = bulwark.WithReport(idempotency.WithKey(context.Background(), "order-1"))
	v, err = call(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", v)
	assert.True(t, report.Replayed(), "the replay shows in the Report")

	_, err = call(idempotency.WithKey(context.Background(), "order-2"))
	require.NoError(t, err)
	assert.Equal(t, int32(2), runs.Load(), "one run per key")

	_, err = call(idempotency.WithKey(context.Background(), ""))
	assert.ErrorContains(t, err, "empty key", "an attached empty key is a mistake, not 'no key'")
}

func TestMiddlewarePayloadFingerprint(t *testing.T) {
	m := newManager(t, nil, idempotency.Config{})
	call := idempotency.Middleware[int](m, nil)(value(1))
	_, err := call(idempotency.WithKeyPayload(context.Background(), "k", "fp-1"))
	require.NoError(t, err)
	_, err = call(idempotency.WithKeyPayload(context.Background(), "k", "fp-2"))
	assert.ErrorIs(t, err, idempotency.ErrKeyReuse)
}

type requestIDKey struct{}

func TestMiddlewareCustomKeyFuncInAChain(t *testing.T) {
	m := newManager(t, nil, idempotency.Config{})
	keyFunc := func(ctx context.Context) (string, string, bool) {
		id, ok := ctx.Value(requestIDKey{}).(string)
		return "payments/" + id, "", ok
	}
	var outer, inner atomic.Int32
	count := func(n *atomic.Int32) bulwark.Middleware[int] {
		return func(next bulwark.Func[int]) bulwark.Func[int] {
			return func(ctx context.Context) (int, error) {
				n.Add(1)
				return next(ctx)
			}
		}
	}
	call := bulwark.Chain(count(&outer), idempotency.Middleware[int](m, keyFunc), count(&inner))(value(3))
	ctx := context.WithValue(context.Background(), requestIDKey{}, "req-9")
	for range 3 {
		v, err := call(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, v)
	}
	assert.Equal(t, int32(3), outer.Load())
	assert.Equal(t, int32(1), inner.Load(), "layers inside idempotency run once")
	_, _, ok := idempotency.KeyFrom(ctx)
	assert.False(t, ok)
}

func TestKeyContext(t *testing.T) {
	base, cancel := context.WithCancel(context.WithValue(context.Background(), requestIDKey{}, "r"))
	_, _, ok := idempotency.KeyFrom(base)
	assert.False(t, ok)

	ctx := idempotency.WithKeyPayload(base, "k", "fp")
	key, fp, ok := idempotency.KeyFrom(ctx)
	assert.True(t, ok)
	assert.Equal(t, "k", key)
	assert.Equal(t, "fp", fp)
	assert.Equal(t, "r", ctx.Value(requestIDKey{}), "other values still visible")

	key, fp, ok = idempotency.KeyFrom(idempotency.WithKey(ctx, "inner"))
	assert.True(t, ok)
	assert.Equal(t, "inner", key, "the innermost key wins")
	assert.Empty(t, fp)

	cancel()
	assert.ErrorIs(t, ctx.Err(), context.Canceled, "cancellation passes through")

	allocs := testing.AllocsPerRun(100, func() { ctx = idempotency.WithKey(base, "k") })
	assert.Equal(t, 1.0, allocs, "one allocation, like a context.WithValue of a pointer")
	allocs = testing.AllocsPerRun(100, func() { _, _, _ = idempotency.KeyFrom(ctx) })
	assert.Zero(t, allocs)
}
