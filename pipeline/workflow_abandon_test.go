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
