package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
)

// slowCharge is an operation that ignores its context (a slow payment API)
// and counts how many times, and how many at once, it ran.
type slowCharge struct {
	runs, running, maxRunning atomic.Int32
	release                   chan struct{}
	finish                    func() // closes release, once
	err                       error  // the late outcome
}

// newSlowCharge returns a slowCharge that the test's end releases, should
// an assertion fail first.
func newSlowCharge(t *testing.T) *slowCharge {
	c := &slowCharge{release: make(chan struct{})}
	c.finish = sync.OnceFunc(func() { close(c.release) })
	t.Cleanup(c.finish)
	return c
}

func (c *slowCharge) fn(context.Context) (string, error) {
	c.runs.Add(1)
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for m := c.maxRunning.Load(); n > m && !c.maxRunning.CompareAndSwap(m, n); m = c.maxRunning.Load() {
	}
	<-c.release
	if c.err != nil {
		return "", c.err
	}
	return "charged", nil
}

// abandonStacks returns two stacks over one idempotency store, as two
// processes sharing a Redis store would be, each with a breaker that
// abandons calls after 20ms.
func abandonStacks(t *testing.T, withFallback bool) (a, b *pipeline.Stack) {
	t.Helper()
	store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	require.NoError(t, err)
	cfg := pipeline.Config{
		Idempotency: &pipeline.IdempotencyConfig{Store: store},
		Breaker:     &breaker.Config{RequestTimeout: 20 * time.Millisecond, AbandonOnTimeout: true},
	}
	if withFallback {
		cfg.Fallback = &pipeline.FallbackConfig{}
	}
	a, err = pipeline.New(cfg)
	require.NoError(t, err)
	b, err = pipeline.New(cfg)
	require.NoError(t, err)
	return a, b
}

// A call the breaker abandons (AbandonOnTimeout) keeps its idempotency
// claim until the abandoned operation ends: duplicates in the same process
// wait, those of another process get ErrInProgress, and none runs the
// operation a second time while the first still runs. Its late value is
// then recorded and replayed.
func TestAbandonedCallKeepsIdempotencyClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, other := abandonStacks(t, false)
		charge := newSlowCharge(t)
		key := pipeline.IdempotencyKey("charge-42")

		r := pipeline.Execute(t.Context(), s, "payments", charge.fn, key)
		require.ErrorIs(t, r.Err, breaker.ErrTimeout, "the caller gets the timeout at once")

		// Another process: the key is held.
		r = pipeline.Execute(t.Context(), other, "payments", charge.fn, key)
		require.ErrorIs(t, r.Err, idempotency.ErrInProgress)

		// This process: the duplicate waits, until its own deadline here.
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		r = pipeline.Execute(ctx, s, "payments", charge.fn, key)
		cancel()
		require.ErrorIs(t, r.Err, context.DeadlineExceeded)
		assert.EqualValues(t, 1, charge.runs.Load(), "fn ran again while the abandoned call still ran")

		// Past several leases (1m): the claim is renewed meanwhile.
		time.Sleep(5 * time.Minute)
		r = pipeline.Execute(t.Context(), other, "payments", charge.fn, key)
		require.ErrorIs(t, r.Err, idempotency.ErrInProgress, "the lease must be renewed while the abandoned call runs")

		charge.finish()
		synctest.Wait()
		for _, st := range []*pipeline.Stack{s, other} {
			r = pipeline.Execute(t.Context(), st, "payments", charge.fn, key)
			require.NoError(t, r.Err)
			assert.Equal(t, "charged", r.Value)
			assert.True(t, r.Replayed, "the late value is the operation's result")
		}
		assert.EqualValues(t, 1, charge.runs.Load())
	})
}

// A duplicate that waits in the same process for an abandoned call shares
// its late value.
func TestAbandonedCallWaiterSharesLateValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := abandonStacks(t, false)
		charge := newSlowCharge(t)
		key := pipeline.IdempotencyKey("charge-42")
		r := pipeline.Execute(t.Context(), s, "payments", charge.fn, key)
		require.ErrorIs(t, r.Err, breaker.ErrTimeout)
		go func() {
			time.Sleep(time.Second)
			charge.finish()
		}()
		r = pipeline.Execute(t.Context(), s, "payments", charge.fn, key)
		require.NoError(t, r.Err)
		assert.Equal(t, "charged", r.Value)
		assert.True(t, r.Replayed)
		assert.EqualValues(t, 1, charge.runs.Load())
	})
}

// An abandoned call that fails late releases the key once it ended: the
// next call runs the operation again, never concurrently with it.
func TestAbandonedCallFailingLateReleasesClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, other := abandonStacks(t, false)
		charge := newSlowCharge(t)
		charge.err = errors.New("card declined by a flaky gateway")
		key := pipeline.IdempotencyKey("charge-42")
		r := pipeline.Execute(t.Context(), s, "payments", charge.fn, key)
		require.ErrorIs(t, r.Err, breaker.ErrTimeout)
		r = pipeline.Execute(t.Context(), other, "payments", charge.fn, key)
		require.ErrorIs(t, r.Err, idempotency.ErrInProgress)

		charge.finish()
		synctest.Wait()
		charge.err = nil
		r = pipeline.Execute(t.Context(), other, "payments", charge.fn, key)
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed)
		assert.EqualValues(t, 2, charge.runs.Load())
		assert.EqualValues(t, 1, charge.maxRunning.Load())
	})
}

// The caller's own cancellation abandons the call too: the claim holds
// until the operation ends.
func TestCancelledAbandonedCallKeepsClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, other := abandonStacks(t, false)
		charge := newSlowCharge(t)
		key := pipeline.IdempotencyKey("charge-42")
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
		r := pipeline.Execute(ctx, s, "payments", charge.fn, key)
		cancel()
		require.ErrorIs(t, r.Err, context.DeadlineExceeded)
		r = pipeline.Execute(t.Context(), other, "payments", charge.fn, key)
		require.ErrorIs(t, r.Err, idempotency.ErrInProgress)
		charge.finish()
		synctest.Wait()
		r = pipeline.Execute(t.Context(), other, "payments", charge.fn, key)
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed)
		assert.EqualValues(t, 1, charge.runs.Load())
	})
}

// With a fallback between the idempotency layer and the breaker, the
// abandoned call's timeout is answered from the cache (FromCache, which
// alone would release the claim): the abandoned operation comes first, and
// the claim holds until it ends. The cached value is not recorded; the
// late one is.
func TestAbandonedCallAnsweredFromCacheKeepsClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, other := abandonStacks(t, true)
		op := pipeline.Operation("charge")
		fresh := func(context.Context) (string, error) { return "cached", nil }
		r := pipeline.Execute(t.Context(), s, "payments", fresh, op, pipeline.IdempotencyKey("charge-41"))
		require.NoError(t, r.Err)

		charge := newSlowCharge(t)
		key := pipeline.IdempotencyKey("charge-42")
		r = pipeline.Execute(t.Context(), s, "payments", charge.fn, op, key)
		require.NoError(t, r.Err)
		assert.True(t, r.FromCache)
		assert.Equal(t, "cached", r.Value)

		r = pipeline.Execute(t.Context(), other, "payments", charge.fn, op, key)
		require.ErrorIs(t, r.Err, idempotency.ErrInProgress, "a fallback's answer released the claim of a call still running")
		assert.EqualValues(t, 1, charge.runs.Load())

		charge.finish()
		synctest.Wait()
		r = pipeline.Execute(t.Context(), other, "payments", charge.fn, op, key)
		require.NoError(t, r.Err)
		assert.Equal(t, "charged", r.Value)
		assert.True(t, r.Replayed)
		assert.EqualValues(t, 1, charge.runs.Load())
	})
}

// A keyed call whose function makes a call that the breaker abandons, and
// fails because of it, keeps its own key until the abandoned function
// ends: that function's effect is part of the enclosing operation. (The
// inner call's Report passed only FromCache up, and the key was freed.)
// Then the key is released, not completed with the inner call's value:
// the order's function failed and never returned it (it would have been
// replayed as the order's result, the order's own later steps never run).
func TestAbandonedNestedCallKeepsEnclosingKey(t *testing.T) {
	for _, via := range []string{"Execute", "Middleware"} {
		t.Run(via, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
				require.NoError(t, err)
				cfg := pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{Store: store}}
				s, err := pipeline.New(cfg)
				require.NoError(t, err)
				other, err := pipeline.New(cfg)
				require.NoError(t, err)
				require.NoError(t, s.Configure("payments", pipeline.Config{
					Breaker: &breaker.Config{RequestTimeout: time.Second, AbandonOnTimeout: true},
				}))
				charge := newSlowCharge(t)
				pay := pipeline.Middleware[string](s, "payments")(charge.fn)
				var orders atomic.Int32
				order := func(ctx context.Context) (string, error) {
					orders.Add(1)
					if via == "Middleware" {
						return pay(ctx)
					}
					r := pipeline.Execute(ctx, s, "payments", charge.fn)
					return r.Value, r.Err
				}
				key := pipeline.IdempotencyKey("order-7")
				r := pipeline.Execute(t.Context(), s, "orders", order, key)
				require.ErrorIs(t, r.Err, breaker.ErrTimeout)
				r = pipeline.Execute(t.Context(), other, "orders", order, key)
				require.ErrorIs(t, r.Err, idempotency.ErrInProgress, "the order's key was freed while its charge still ran")
				assert.EqualValues(t, 1, orders.Load())

				charge.finish()
				synctest.Wait()
				r = pipeline.Execute(t.Context(), other, "orders", order, key)
				require.NoError(t, r.Err)
				assert.False(t, r.Replayed, "the late charge is not the order's result")
				assert.EqualValues(t, 2, orders.Load(), "the order runs again once its key is released")
			})
		})
	}
}
