package breaker

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

// requireUntouched checks that b counted nothing and is still CLOSED in
// its first generation.
func requireUntouched(t *testing.T, b *Breaker) {
	t.Helper()
	st := b.Stats()
	assert.Equal(t, Closed, st.State)
	assert.Zero(t, st.Total)
	assert.Zero(t, st.Successes)
	assert.Zero(t, st.Failures)
	assert.Zero(t, st.Ignored)
	assert.Zero(t, st.Rejections)
	assert.Zero(t, st.ConsecutiveFailures)
	assert.Zero(t, st.TimesOpened)
	assert.Zero(t, b.word.Load()>>genShift, "no state change")
}

// Issue 14, item 3: Do(ctx, b, nil) crashed with a nil dereference that
// counted as a failure, so five of them opened the circuit.
func TestDoNilFunction(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			rec := &recorder{}
			b := newBreakerT(t, m.cfg(Config{}, rec))
			for range 10 {
				v, err := Do[int](context.Background(), b, nil)
				require.ErrorIs(t, err, ErrInvalid)
				assert.Equal(t, "breaker: invalid input: nil function", err.Error())
				assert.False(t, errors.Is(err, bulwark.ErrRejected), "not a rejection: nothing to fall back on")
				assert.Zero(t, v)
			}
			requireUntouched(t, b)
			assert.Empty(t, rec.all(), "no events")
			require.NoError(t, ok(b), "healthy calls still run")
		})
	}
}

func TestDoNilBreakerAndContext(t *testing.T) {
	_, err := Do(context.Background(), nil, nop)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "nil *Breaker")

	b := newBreakerT(t, Config{})
	ran := false
	//lint:ignore SA1012 a nil context is the input under test
	_, err = Do(nil, b, func(context.Context) (int, error) { ran = true; return 0, nil })
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "nil context")
	assert.False(t, ran)
	requireUntouched(t, b)
}

func TestMiddlewareNilInputs(t *testing.T) {
	for _, abandon := range []bool{false, true} {
		b := newBreakerT(t, Config{AbandonOnTimeout: abandon})
		for range 10 {
			_, err := Middleware[int](b)(nil)(context.Background())
			require.ErrorIs(t, err, ErrInvalid)
			_, err = Middleware[int](nil)(nop)(context.Background())
			require.ErrorIs(t, err, ErrInvalid)
			var nilCtx context.Context
			_, err = Middleware[int](b)(nop)(nilCtx)
			require.ErrorIs(t, err, ErrInvalid)
		}
		requireUntouched(t, b)
	}
}

func TestAllowOnNilBreaker(t *testing.T) {
	var b *Breaker
	done, err := b.Allow()
	require.ErrorIs(t, err, ErrInvalid)
	assert.Nil(t, done)
}

// A done called twice gives a probe's slot back once: before, the second
// call let an extra probe in.
func TestAllowDoneTwiceFreesTheProbeOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, HalfOpenMaxCalls: 2, SuccessThreshold: 3})
		openBreaker(t, b)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		done1, err := b.Allow()
		require.NoError(t, err)
		require.Equal(t, HalfOpen, b.State())
		done2, err := b.Allow()
		require.NoError(t, err)
		done1(context.Canceled) // counts neither way, frees one slot
		done1(context.Canceled) // must not free another
		_, err = b.Allow()
		require.NoError(t, err, "one slot is free")
		_, err = b.Allow()
		require.ErrorIs(t, err, ErrTooManyProbes, "only one slot was freed")
		done2(nil)
		assert.Equal(t, int64(1), b.Stats().Ignored)
	})
}

func TestNilGroup(t *testing.T) {
	var g *Group
	assert.Nil(t, g.Get("x"))
	require.ErrorIs(t, g.Configure("x", Config{}), ErrInvalid)
	assert.Empty(t, g.Names())
	assert.Empty(t, g.Stats())
	assert.NotPanics(t, func() { _ = g.Summary() })
	_, err := Do(context.Background(), g.Get("x"), nop)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestConfigErrorWrapsErrInvalid(t *testing.T) {
	_, err := New("svc", Config{FailureThreshold: -1})
	require.ErrorIs(t, err, ErrInvalid)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "FailureThreshold", ce.Field)
}
