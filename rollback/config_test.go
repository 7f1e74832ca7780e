package rollback_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/bulwark-go/bulwark/rollback"
)

func TestDoInvalidArguments(t *testing.T) {
	ran := false
	fn := func(context.Context) (int, error) { ran = true; return 0, nil }
	for _, tc := range []struct {
		cfg   rollback.Config
		field string
	}{
		{rollback.Config{Attempts: -1}, "Config.Attempts"},
		{rollback.Config{InitialInterval: -time.Second}, "Config.InitialInterval"},
	} {
		_, err := rollback.Do(t.Context(), fn, rollback.WithConfig(tc.cfg))
		assert.ErrorIs(t, err, rollback.ErrInvalid)
		assert.ErrorContains(t, err, tc.field)
		assert.ErrorIs(t, tc.cfg.Validate(), rollback.ErrInvalid)

		_, _, err = rollback.Begin(t.Context(), rollback.WithConfig(tc.cfg))
		assert.ErrorContains(t, err, tc.field)
	}
	assert.False(t, ran, "nothing runs with an invalid config")

	_, err := rollback.Do[int](t.Context(), nil)
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	assert.ErrorContains(t, err, "fn")
	assert.NoError(t, rollback.Config{}.Validate())
	assert.NoError(t, rollback.Config{Timeout: -1}.Validate(), "a negative timeout disables it")
}

func TestOptionsApplyInOrder(t *testing.T) {
	calls := 0
	_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "x", func(context.Context) error {
			calls++
			return errCall
		})
		return 0, errCall
	},
		rollback.WithConfig(rollback.Config{Attempts: 5}),
		nil, // skipped
		func(c *rollback.Config) { c.Attempts = 1 },
	)
	assert.Equal(t, 1, calls, "the later option wins")
}
