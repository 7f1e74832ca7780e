package retry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/retry"
)

// WithMaxAttempts(5) on the outer call must not reach a call made inside
// it: the inner Retrier (MaxAttempts 1, a charge that may have gone
// through) runs its function once.
func TestWithMaxAttemptsFiveOuterDoesNotRetryNestedCharge(t *testing.T) {
	outer, err := retry.New(retry.Config{NoWait: true})
	require.NoError(t, err)
	inner, err := retry.New(retry.Config{MaxAttempts: 1})
	require.NoError(t, err)
	charges := 0
	errTimeout := errors.New("gateway timeout")
	for _, tc := range []struct {
		name string
		ctx  func() context.Context
	}{
		{"the context WithMaxAttempts returned", func() context.Context {
			return retry.WithMaxAttempts(context.Background(), 5)
		}},
		{"a context derived from it", func() context.Context {
			ctx, cancel := context.WithCancel(retry.WithMaxAttempts(context.Background(), 5))
			t.Cleanup(cancel)
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			charges = 0
			outerCalls := 0
			_, err := retry.Do(tc.ctx(), outer, func(ctx context.Context) (int, error) {
				outerCalls++
				_, seen := retry.MaxAttemptsFrom(ctx)
				assert.False(t, seen, "the function sees the outer call's attempts")
				return retry.Do(ctx, inner, func(context.Context) (int, error) {
					charges++
					return 0, errTimeout
				})
			})
			assert.ErrorIs(t, err, errTimeout)
			assert.Equal(t, 5, outerCalls, "the outer call keeps its own 5 attempts")
			assert.Equal(t, 5, charges, "one charge per outer attempt, never retried by the inner layer")
		})
	}
}
