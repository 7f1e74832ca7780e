package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
)

// Guards see the failures of their own group only: the compensations
// registered after them and before the next guard.
func TestOnRollbackGuard(t *testing.T) {
	var seen []string
	guard := func(name string) func(context.Context, bool) error {
		return func(_ context.Context, failed bool) error {
			seen = append(seen, fmt.Sprintf("%s failed=%v", name, failed))
			return rollback.ErrNoEffect
		}
	}
	undo := func(name string, err error) func(context.Context) error {
		return func(context.Context) error { seen = append(seen, name); return err }
	}
	_, err := rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
		require.NoError(t, rollback.OnRollbackGuard(ctx, "guard 1", guard("guard 1")))
		require.NoError(t, rollback.OnRollback(ctx, "undo 1", undo("undo 1", nil)))
		require.NoError(t, rollback.OnRollbackGuard(ctx, "guard 2", guard("guard 2")))
		require.NoError(t, rollback.OnRollback(ctx, "undo 2a", undo("undo 2a", rollback.Permanent(errors.New("boom")))))
		require.NoError(t, rollback.OnRollback(ctx, "undo 2b", undo("undo 2b", nil)))
		require.NoError(t, rollback.OnRollbackGuard(ctx, "guard 3", guard("guard 3")))
		require.NoError(t, rollback.OnRollback(ctx, "undo 3", undo("undo 3", rollback.ErrNoEffect)))
		return 0, errors.New("step 4 failed")
	})
	var rbErr *rollback.Error
	require.ErrorAs(t, err, &rbErr)
	require.Len(t, rbErr.Failures, 1)
	assert.Equal(t, []string{
		"undo 3", "guard 3 failed=false", // ErrNoEffect is not a failure
		"undo 2b", "undo 2a", "guard 2 failed=true",
		"undo 1", "guard 1 failed=false", // a later group's failure is not this group's
	}, seen)

	assert.ErrorIs(t, rollback.OnRollbackGuard(context.Background(), "g", guard("g")), rollback.ErrNoScope)
	_, _ = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
		assert.ErrorIs(t, rollback.OnRollbackGuard(ctx, "", guard("g")), rollback.ErrInvalid)
		assert.ErrorIs(t, rollback.OnRollbackGuard(ctx, "g", nil), rollback.ErrInvalid)
		return 0, nil
	})
}
