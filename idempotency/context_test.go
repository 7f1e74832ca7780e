package idempotency_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
)

// Inside a keyed operation, KeyFrom tells the key it runs under while
// AttachedKey finds none; a key attached there, for a nested call, is
// found by both.
func TestAttachedKeyInsideOperationOnlyForNestedAttachment(t *testing.T) {
	store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	require.NoError(t, err)
	m, err := idempotency.New(store, idempotency.Config{})
	require.NoError(t, err)
	mw := idempotency.Middleware[int](m, nil)
	ran := false
	_, err = mw(func(ctx context.Context) (int, error) {
		ran = true
		k, _, ok := idempotency.KeyFrom(ctx)
		assert.True(t, ok)
		assert.NotEmpty(t, k)
		_, _, ok = idempotency.AttachedKey(ctx)
		assert.False(t, ok, "the operation's key is attached for the calls inside it")
		nested := idempotency.WithKey(ctx, "nested")
		k, _, ok = idempotency.AttachedKey(nested)
		assert.True(t, ok)
		assert.Equal(t, "nested", k)
		k, _, _ = idempotency.KeyFrom(nested)
		assert.Equal(t, "nested", k)
		return 1, nil
	})(idempotency.WithKey(t.Context(), "outer"))
	require.NoError(t, err)
	assert.True(t, ran)
}
