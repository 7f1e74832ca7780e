package pipeline_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// counting fails every time and counts its runs.
func counting(n *int) bulwark.Func[string] {
	return func(context.Context) (string, error) { *n++; return "", errDown }
}

func TestNoRetryAndAttemptsSetTheAttemptsOfOneCall(t *testing.T) {
	s := newStack(t, pipeline.Config{Retry: &retry.Config{MaxAttempts: 3, NoWait: true}})
	for _, tc := range []struct {
		name string
		opts []pipeline.CallOption
		want int
	}{
		{"executor's", nil, 3},
		{"NoRetry", []pipeline.CallOption{pipeline.NoRetry()}, 1},
		{"Attempts(5)", []pipeline.CallOption{pipeline.Attempts(5)}, 5},
		{"last option wins", []pipeline.CallOption{pipeline.Attempts(5), pipeline.NoRetry()}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			r := pipeline.Execute(t.Context(), s, "api", counting(&n), tc.opts...)
			assert.ErrorIs(t, r.Err, errDown)
			assert.Equal(t, tc.want, n)
			assert.Equal(t, tc.want, r.Attempts)

			n = 0
			_, err := pipeline.Do(t.Context(), s, "api", counting(&n), tc.opts...)
			assert.ErrorIs(t, err, errDown)
			assert.Equal(t, tc.want, n, "Do")

			n = 0
			_, err = pipeline.Middleware[string](s, "api", tc.opts...)(counting(&n))(t.Context())
			assert.ErrorIs(t, err, errDown)
			assert.Equal(t, tc.want, n, "Middleware")
		})
	}
}

func TestAttemptsBelowOneIsInvalid(t *testing.T) {
	s := newStack(t, pipeline.Reliable())
	for _, n := range []int{0, -1} {
		runs := 0
		_, err := pipeline.Do(t.Context(), s, "api", counting(&runs), pipeline.Attempts(n))
		require.ErrorIs(t, err, pipeline.ErrInvalid)
		assert.ErrorContains(t, err, "Attempts")
		assert.Zero(t, runs, "nothing runs")

		_, err = pipeline.Middleware[string](s, "api", pipeline.Attempts(n))(counting(&runs))(t.Context())
		require.ErrorIs(t, err, pipeline.ErrInvalid)
		assert.Zero(t, runs)
	}
}

func TestHasFallback(t *testing.T) {
	s := newStack(t, pipeline.Config{Fallback: &pipeline.FallbackConfig{}})
	assert.True(t, s.HasFallback("not-made-yet"), "from the defaults")
	require.NoError(t, s.Configure("plain", pipeline.Config{}))
	assert.False(t, s.HasFallback("plain"))
	require.NoError(t, s.Configure("plain", pipeline.Unreliable()))
	assert.True(t, s.HasFallback("plain"), "reconfigured")

	s = newStack(t, pipeline.Config{})
	assert.False(t, s.HasFallback("x"))
	var nilStack *pipeline.Stack
	assert.False(t, nilStack.HasFallback("x"))
}
