package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/rollback"
)

// A compensation that had nothing to undo is not retried, not a failure,
// emits no event and does not mark the call as rolled back.
func TestErrNoEffect(t *testing.T) {
	var events []bulwark.Event
	failed := errors.New("step 3 failed")
	calls := 0
	ctx, report := bulwark.WithReport(context.Background())
	_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
		require.NoError(t, rollback.OnRollback(ctx, "forget key", func(context.Context) error {
			calls++
			return fmt.Errorf("key k: %w", rollback.ErrNoEffect)
		}))
		return 0, failed
	}, rollback.WithConfig(rollback.Config{OnEvent: func(e bulwark.Event) { events = append(events, e) }}))
	assert.Same(t, failed, err, "no *rollback.Error: nothing failed")
	assert.Equal(t, 1, calls, "not retried")
	assert.Empty(t, events)
	assert.False(t, report.RolledBack())
}

// Next to real compensations, only those report.
func TestErrNoEffectAmongOthers(t *testing.T) {
	var kinds []string
	ctx, report := bulwark.WithReport(context.Background())
	_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "delete page", func(context.Context) error { return nil })
		_ = rollback.OnRollback(ctx, "forget key", func(context.Context) error { return rollback.ErrNoEffect })
		return 0, errors.New("boom")
	}, rollback.WithConfig(rollback.Config{OnEvent: func(e bulwark.Event) { kinds = append(kinds, e.Kind.String()+" "+e.Step) }}))
	require.Error(t, err)
	assert.Equal(t, []string{"rollback:compensated delete page"}, kinds)
	assert.True(t, report.RolledBack())
}

// StepHasUndo is true exactly inside the Do of a saga step with an Undo.
func TestStepHasUndo(t *testing.T) {
	type state struct{ seen []bool }
	saga, err := rollback.NewSaga([]rollback.Step[state]{
		{Name: "with undo",
			Do: func(ctx context.Context, s *state) error {
				s.seen = append(s.seen, rollback.StepHasUndo(ctx))
				return nil
			},
			Undo: func(ctx context.Context, s *state) error {
				s.seen = append(s.seen, rollback.StepHasUndo(ctx))
				return nil
			}},
		{Name: "without undo",
			Do: func(ctx context.Context, s *state) error {
				s.seen = append(s.seen, rollback.StepHasUndo(ctx))
				return errors.New("fail")
			}},
	})
	require.NoError(t, err)
	var s state
	require.Error(t, saga.Run(context.Background(), &s))
	assert.Equal(t, []bool{true, false, false}, s.seen, "Do with Undo, Do without, then the Undo itself")
	assert.False(t, rollback.StepHasUndo(context.Background()))
}
