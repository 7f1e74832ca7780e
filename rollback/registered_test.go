package rollback_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
)

// Registered counts the compensations a scope gained: registered with it
// or handed over by a nested scope that committed; not guards, not those
// of a nested scope that rolled back; it never goes down.
func TestRegistered(t *testing.T) {
	assert.Zero(t, rollback.Registered(t.Context()), "no scope")
	nop := func(context.Context) error { return nil }
	boom := errors.New("boom")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		assert.Zero(t, rollback.Registered(ctx))
		require.NoError(t, rollback.OnRollbackGuard(ctx, "guard", func(context.Context, bool) error { return nil }))
		assert.Zero(t, rollback.Registered(ctx), "a guard is not a compensation")
		require.NoError(t, rollback.OnRollback(ctx, "a", nop))
		assert.Equal(t, int64(1), rollback.Registered(ctx))

		_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
			require.NoError(t, rollback.OnRollback(ctx, "b", nop))
			require.NoError(t, rollback.OnRollback(ctx, "c", nop))
			assert.Equal(t, int64(2), rollback.Registered(ctx), "the nested scope's own")
			return 0, nil
		})
		require.NoError(t, err)
		assert.Equal(t, int64(3), rollback.Registered(ctx), "handed over")

		_, err = rollback.Do(ctx, func(ctx context.Context) (int, error) {
			return 0, errors.Join(rollback.OnRollback(ctx, "d", nop), boom)
		})
		require.ErrorIs(t, err, boom)
		assert.Equal(t, int64(3), rollback.Registered(ctx), "rolled back: nothing handed over")
		return 0, nil
	})
	require.NoError(t, err)

	ctx, sc, err := rollback.Begin(t.Context())
	require.NoError(t, err)
	require.NoError(t, rollback.OnRollback(ctx, "a", nop))
	require.NoError(t, sc.Rollback(nil))
	assert.Equal(t, int64(1), rollback.Registered(ctx), "never goes down")
}
