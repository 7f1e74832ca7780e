package retry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/retry"
)

var errFlaky = errors.New("flaky")

func TestWithMaxAttemptsOverridesConfig(t *testing.T) {
	r, err := retry.New(retry.Config{MaxAttempts: 2, NoWait: true})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		n    int
		want int
	}{
		{"one turns retries off", 1, 1},
		{"fewer than the config", 1, 1},
		{"more than the config", 5, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := always(errFlaky)
			_, err := retry.Do(retry.WithMaxAttempts(context.Background(), tc.n), r, s.fn)
			var re *retry.Error
			require.ErrorAs(t, err, &re)
			assert.Equal(t, tc.want, re.Attempts)
			assert.Len(t, s.starts, tc.want)
			assert.ErrorIs(t, err, retry.ErrExhausted)
			assert.ErrorIs(t, err, errFlaky)
		})
	}
}

func TestWithMaxAttemptsLaterWins(t *testing.T) {
	r, err := retry.New(retry.Config{NoWait: true})
	require.NoError(t, err)
	ctx := retry.WithMaxAttempts(retry.WithMaxAttempts(context.Background(), 1), 4)
	s := always(errFlaky)
	_, _ = retry.Do(ctx, r, s.fn)
	assert.Len(t, s.starts, 4)
	n, ok := retry.MaxAttemptsFrom(ctx)
	assert.True(t, ok)
	assert.Equal(t, 4, n)
	_, ok = retry.MaxAttemptsFrom(context.Background())
	assert.False(t, ok)
}

func TestWithMaxAttemptsBelowOneIsRefusedAfterTheFirstFailure(t *testing.T) {
	r, err := retry.New(retry.Config{NoWait: true})
	require.NoError(t, err)
	for _, n := range []int{0, -3} {
		s := always(errFlaky)
		_, err := retry.Do(retry.WithMaxAttempts(context.Background(), n), r, s.fn)
		assert.Len(t, s.starts, 1)
		assert.ErrorIs(t, err, retry.ErrInvalidConfig)
		assert.ErrorIs(t, err, errFlaky)
		assert.ErrorContains(t, err, "WithMaxAttempts")
	}
	// A first success never reads it.
	s := failing(0, nil)
	v, err := retry.Do(retry.WithMaxAttempts(context.Background(), 0), r, s.fn)
	assert.NoError(t, err)
	assert.Equal(t, 1, v)
}

func TestWithMaxAttemptsSuccessPathAllocatesNothing(t *testing.T) {
	r, err := retry.New(retry.Config{})
	require.NoError(t, err)
	ctx := retry.WithMaxAttempts(context.Background(), 1)
	fn := func(context.Context) (int, error) { return 1, nil }
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = retry.Do(ctx, r, fn) }))
}
