package breaker

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// offeredContext is a caller's context offering a CallContextFunc that
// records what the breaker asked for.
type offeredContext struct {
	context.Context
	mk CallContextFunc
}

func (c offeredContext) Value(key any) any {
	if _, ok := key.(CallContextKey); ok {
		return c.mk
	}
	return c.Context.Value(key)
}

// A caller that offers a CallContextFunc gets the context it makes: with
// the deadline of RequestTimeout, released once when the call returns, and
// its end at the deadline is the breaker's own timeout.
func TestCallContextFuncMakesTheCallsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 5, RequestTimeout: 2 * time.Second})
		var (
			made      []context.Context
			deadlines []time.Time
			released  int
		)
		ctx := offeredContext{Context: t.Context(), mk: func(parent context.Context, deadline time.Time, cause error) (context.Context, context.CancelFunc) {
			assert.ErrorIs(t, cause, ErrTimeout)
			c, cancel := context.WithDeadlineCause(parent, deadline, cause)
			made = append(made, c)
			deadlines = append(deadlines, deadline)
			return c, func() { released++; cancel() }
		}}
		start := time.Now()

		// A call that returns in time.
		_, err := Do(ctx, b, func(fctx context.Context) (int, error) {
			require.Len(t, made, 1)
			assert.Same(t, made[0], fctx, "fn runs with the context the caller made")
			assert.Equal(t, 0, released)
			return 1, nil
		})
		require.NoError(t, err)
		assert.Equal(t, 1, released, "released once when the call returned")
		assert.Equal(t, start.Add(2*time.Second), deadlines[0])

		// A call that outlives RequestTimeout: the made context ends at the
		// deadline and the breaker counts its own timeout.
		_, err = Do(ctx, b, func(fctx context.Context) (int, error) {
			<-fctx.Done()
			return 0, context.Cause(fctx)
		})
		require.ErrorIs(t, err, ErrTimeout)
		assert.Equal(t, start.Add(2*time.Second), time.Now(), "cut off at the deadline")
		assert.Equal(t, int64(1), b.Stats().Timeouts)
		assert.Equal(t, int64(1), b.Stats().Failures)
		assert.Equal(t, 2, released)

		// A caller whose deadline comes first: no context is made.
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err = Do(dctx, b, func(fctx context.Context) (int, error) { return 1, nil })
		require.NoError(t, err)
		assert.Len(t, made, 2)
	})
}

// A nil CallContextFunc is ignored: the breaker makes its own context.
func TestNilCallContextFuncIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{RequestTimeout: time.Second})
		ctx := offeredContext{Context: t.Context()}
		var fctx context.Context
		_, err := Do(ctx, b, func(c context.Context) (int, error) { fctx = c; return 1, nil })
		require.NoError(t, err)
		require.NotNil(t, fctx)
		d, ok := fctx.Deadline()
		assert.True(t, ok)
		assert.Equal(t, time.Now().Add(time.Second), d)
		assert.Error(t, fctx.Err(), "released when the call returned")
	})
}
