package pipeline_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// A subscriber that panics on one kind of event: the panic reaches the
// caller, and afterwards the stack is not wedged (no probe slot held, no
// claim held, no lock held).
func TestPanickingSubscriberWedgesNothing(t *testing.T) {
	kinds := []bulwark.EventKind{
		bulwark.RequestSuccess, bulwark.RequestFailure, bulwark.RetryAttempt,
		bulwark.RetryExhausted, bulwark.CircuitOpened, bulwark.RequestRejected,
		bulwark.FallbackUsed, bulwark.CircuitHalfOpen, bulwark.CircuitClosed,
	}
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := pipeline.Unreliable()
				cfg.Retry = &retry.Config{MaxAttempts: 2, NoWait: true}
				cfg.Breaker.SuccessThreshold = 1
				cfg.Breaker.HalfOpenMaxCalls = 1
				s := newStack(t, cfg)
				armed := true
				cancel := s.Subscribe(func(e bulwark.Event) {
					if armed && e.Kind == kind {
						armed = false
						panic("subscriber: " + string(kind))
					}
				})
				defer cancel()
				ctx := t.Context()
				fb := pipeline.FallbackKey("get-page")
				call := func(fn func(context.Context) (string, error)) (r pipeline.Result[string], panicked bool) {
					defer func() {
						if v := recover(); v != nil {
							assert.Equal(t, "subscriber: "+string(kind), v)
							panicked = true
						}
					}()
					return pipeline.Execute(ctx, s, "notion", fn, fb), false
				}
				sawPanic := false
				note := func(_ pipeline.Result[string], p bool) { sawPanic = sawPanic || p }
				note(call(value("page")))
				for range 3 {
					note(call(failing(503)))
				}
				note(call(value("page"))) // rejected while OPEN
				time.Sleep(61 * time.Second)
				synctest.Wait()
				note(call(value("page"))) // the probe
				assert.True(t, sawPanic, "the subscriber's panic reached a caller")

				// Whatever state the panic interrupted, the stack recovers:
				// at most one more reset period and it answers live.
				if s.Breaker("notion").State() != breaker.Closed {
					time.Sleep(61 * time.Second)
					synctest.Wait()
				}
				r, p := call(value("fresh"))
				require.False(t, p)
				require.NoError(t, r.Err)
				assert.Equal(t, "fresh", r.Value)
				assert.False(t, r.FromCache)
				assert.Equal(t, breaker.Closed, s.Breaker("notion").State())
			})
		})
	}
}
