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
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
)

// A workflow step the breaker abandons (AbandonOnTimeout) fails the
// workflow at once, but its effect may still happen: when it does, the
// rollback undoes it with the late value (the step's Undo ran only for
// steps that returned in time, and the late charge was never refunded).
// Its key is then forgotten, so that a rerun charges anew; a step that
// fails late has nothing to undo.
func TestWorkflowUndoesAbandonedStep(t *testing.T) {
	for name, keyed := range map[string]bool{"keyed": true, "no key": false} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, err := pipeline.New(pipeline.Config{
					Idempotency: &pipeline.IdempotencyConfig{},
					Breaker:     &breaker.Config{RequestTimeout: time.Second, AbandonOnTimeout: true},
				})
				require.NoError(t, err)
				var mu sync.Mutex
				var undone []string
				var charges atomic.Int32
				release := make(chan struct{})
				finish := sync.OnceFunc(func() { close(release) })
				defer finish()
				charge := func(context.Context) (string, error) {
					n := charges.Add(1)
					if n == 1 {
						<-release // the first charge ignores its context
					}
					return "ch_" + string(rune('0'+n)), nil
				}
				opts := []pipeline.CallOption{pipeline.Undo("refund", func(_ context.Context, id string) error {
					mu.Lock()
					defer mu.Unlock()
					undone = append(undone, id)
					return nil
				})}
				if keyed {
					opts = append(opts, pipeline.IdempotencyKey("order-7/charge"))
				}
				go func() {
					time.Sleep(5 * time.Second)
					finish()
				}()
				_, err = rollback.Do(t.Context(), func(ctx context.Context) (string, error) {
					r := pipeline.Execute(ctx, s, "payments", charge, opts...)
					return r.Value, r.Err
				}, rollback.WithConfig(rollback.Config{Timeout: time.Minute}))
				require.ErrorIs(t, err, breaker.ErrTimeout)
				assert.Equal(t, []string{"ch_1"}, undone, "the late charge is refunded")

				if keyed {
					r := pipeline.Execute(t.Context(), s, "payments", charge, opts...)
					require.NoError(t, r.Err)
					assert.False(t, r.Replayed, "the refunded charge's key was forgotten")
					assert.Equal(t, "ch_2", r.Value)
				}
			})
		})
	}
}

// An abandoned step that fails late has nothing to undo: its Undo does not
// run, and the rollback reports no failure.
func TestWorkflowAbandonedStepFailingLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := pipeline.New(pipeline.Config{
			Breaker: &breaker.Config{RequestTimeout: time.Second, AbandonOnTimeout: true},
		})
		require.NoError(t, err)
		undos := 0
		release := make(chan struct{})
		go func() {
			time.Sleep(5 * time.Second)
			close(release)
		}()
		_, err = rollback.Do(t.Context(), func(ctx context.Context) (string, error) {
			r := pipeline.Execute(ctx, s, "payments", func(context.Context) (string, error) {
				<-release
				return "", errDeclined
			}, pipeline.Undo("refund", func(context.Context, string) error { undos++; return nil }))
			return r.Value, r.Err
		}, rollback.WithConfig(rollback.Config{Timeout: time.Minute}))
		require.ErrorIs(t, err, breaker.ErrTimeout)
		var rerr *rollback.Error
		assert.False(t, errors.As(err, &rerr), "no compensation failed: %v", err)
		assert.Zero(t, undos)
	})
}

var errDeclined = errors.New("declined")

// order is the value of a workflow step whose function makes a nested call.
type order struct{ ID string }

// A workflow step whose FUNCTION makes a call that the breaker abandons
// has no value for its Undo: the late value is the nested call's (a
// string here), not the step's. The rollback reports the compensation as
// failed (the nested effect happened and cannot be undone by the step's
// Undo) instead of calling the Undo with a made-up zero order.
func TestWorkflowNestedAbandonDoesNotUndoAZeroValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := pipeline.New(pipeline.Config{})
		require.NoError(t, err)
		require.NoError(t, s.Configure("payments", pipeline.Config{
			Breaker: &breaker.Config{RequestTimeout: time.Second, AbandonOnTimeout: true},
		}))
		release := make(chan struct{})
		charge := func(context.Context) (string, error) { <-release; return "ch_1", nil }
		step := func(ctx context.Context) (order, error) {
			id, err := pipeline.Do(ctx, s, "payments", charge)
			if err != nil {
				return order{}, err
			}
			return order{ID: "order-for-" + id}, nil
		}
		var mu sync.Mutex
		var undone []order
		undo := pipeline.Undo("cancel order", func(_ context.Context, o order) error {
			mu.Lock()
			defer mu.Unlock()
			undone = append(undone, o)
			return nil
		})
		done := make(chan error, 1)
		go func() {
			_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
				_, err := pipeline.Do(ctx, s, "orders", step, undo)
				return 0, err
			})
			done <- err
		}()
		time.Sleep(1500 * time.Millisecond) // the step timed out; the rollback waits for the late call
		close(release)
		err = <-done
		require.Error(t, err)
		var rerr *rollback.Error
		require.ErrorAs(t, err, &rerr, "the compensation is reported as failed")
		mu.Lock()
		defer mu.Unlock()
		assert.Empty(t, undone, "the Undo was called with a value the step never produced")
	})
}
