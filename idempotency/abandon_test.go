package idempotency_test

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
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
)

// abandoning is a layer that gives up on op after d, as the breaker's
// AbandonOnTimeout does: it returns errGaveUp (or, with cached, a
// fallback's answer) while op still runs, and records op in the Report.
func abandoning[T any](d time.Duration, cached *T, op bulwark.Func[T]) bulwark.Func[T] {
	return func(ctx context.Context) (T, error) {
		type result struct {
			v   T
			err error
		}
		ch := make(chan result, 1)
		go func() {
			v, err := op(ctx)
			ch <- result{v, err}
		}()
		select {
		case r := <-ch:
			return r.v, r.err
		case <-time.After(d):
		}
		var once atomic.Pointer[result]
		bulwark.ReportFrom(ctx).Abandon(func() (any, error) {
			if r := once.Load(); r != nil {
				return r.v, r.err
			}
			r := <-ch
			once.Store(&r)
			return r.v, r.err
		})
		if cached != nil {
			bulwark.ReportFrom(ctx).SetFromCache()
			return *cached, nil
		}
		var zero T
		return zero, errGaveUp
	}
}

var errGaveUp = errors.New("gave up")

// An abandoned call keeps its claim until the operation ends, with or
// without a Report from the caller, and whether a fallback answered it;
// then the late value is recorded. The goroutine that waits for it ends
// with it (synctest fails on a goroutine left behind).
func TestAbandonedOperationKeepsClaim(t *testing.T) {
	old := "old value"
	for name, tc := range map[string]struct {
		report bool
		cached *string
	}{
		"no report": {}, "report": {report: true}, "fallback answered": {report: true, cached: &old},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
				require.NoError(t, err)
				m := newManager(t, store, idempotency.Config{Lease: time.Second})
				otherProcess := newManager(t, store, idempotency.Config{})
				var runs atomic.Int32
				release := make(chan struct{})
				finish := sync.OnceFunc(func() { close(release) })
				defer finish() // a failed assertion must not leave op blocked
				op := func(context.Context) (string, error) {
					if runs.Add(1) > 1 {
						return "ran twice", nil
					}
					<-release
					return "charged", nil
				}
				ctx := context.Background()
				var report *bulwark.Report
				if tc.report {
					ctx, report = bulwark.WithReport(ctx)
				}
				r := idempotency.Execute(ctx, m, "k", "", abandoning(time.Second, tc.cached, op))
				if tc.cached != nil {
					require.NoError(t, r.Err)
					assert.Equal(t, old, r.Value)
				} else {
					require.ErrorIs(t, r.Err, errGaveUp)
				}
				if tc.report {
					assert.Equal(t, 1, report.Abandoned(), "the layers above learn that the call outlives its caller")
				}

				time.Sleep(10 * time.Second) // ten leases
				r = idempotency.Execute(ctx, otherProcess, "k", "", op)
				require.ErrorIs(t, r.Err, idempotency.ErrInProgress)
				assert.EqualValues(t, 1, runs.Load())

				finish()
				synctest.Wait()
				r = idempotency.Execute(ctx, otherProcess, "k", "", op)
				require.NoError(t, r.Err)
				assert.Equal(t, "charged", r.Value)
				assert.True(t, r.Replayed)
				assert.EqualValues(t, 1, runs.Load())
				if tc.report {
					wait := report.TakeAbandoned(0)
					require.NotNil(t, wait)
					_, err := wait() // the Manager's goroutine has ended
					assert.NoError(t, err)
				}
			})
		})
	}
}

// With CacheErrors, a permanent error the abandoned operation returns late
// is recorded like a value; another error releases the key, and a waiter
// in this process then runs the operation itself.
func TestAbandonedOperationLateErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, nil, idempotency.Config{CacheErrors: true})
		declined := idempotency.Permanent(errors.New("declined"))
		release := make(chan struct{})
		finish := sync.OnceFunc(func() { close(release) })
		defer finish()
		late := func(err error) bulwark.Func[string] {
			return func(context.Context) (string, error) { <-release; return "", err }
		}
		r := idempotency.Execute(context.Background(), m, "perm", "", abandoning(time.Second, nil, late(declined)))
		require.ErrorIs(t, r.Err, errGaveUp)
		r = idempotency.Execute(context.Background(), m, "flaky", "", abandoning(time.Second, nil, late(errors.New("flaky"))))
		require.ErrorIs(t, r.Err, errGaveUp)

		var runs atomic.Int32
		waiter := make(chan idempotency.Result[string])
		go func() {
			waiter <- idempotency.Execute(context.Background(), m, "flaky", "", func(context.Context) (string, error) {
				runs.Add(1)
				return "second try", nil
			})
		}()
		synctest.Wait()
		assert.Zero(t, runs.Load(), "the waiter waits while the abandoned operation runs")
		finish()
		w := <-waiter
		require.NoError(t, w.Err)
		assert.Equal(t, "second try", w.Value)
		assert.EqualValues(t, 1, runs.Load(), "after a late failure a waiter starts over")

		r = idempotency.Execute(context.Background(), m, "perm", "", late(nil))
		assert.ErrorIs(t, r.Err, declined)
		assert.True(t, r.Replayed, "a late permanent error is recorded")
	})
}

// The goroutine that holds an abandoned call's claim ends once the
// operation has ended and its result is recorded (real time, goleak).
func TestAbandonedOperationGoroutineEnds(t *testing.T) {
	defer goleak.VerifyNone(t)
	m := newManager(t, nil, idempotency.Config{})
	release := make(chan struct{})
	op := func(context.Context) (string, error) {
		<-release
		return "charged", nil
	}
	r := idempotency.Execute(context.Background(), m, "k", "", abandoning(time.Millisecond, nil, op))
	require.ErrorIs(t, r.Err, errGaveUp)
	close(release)
	// A duplicate in this process waits for the abandoned call, so its
	// answer says the result was recorded.
	r = idempotency.Execute(context.Background(), m, "k", "", op)
	require.NoError(t, r.Err)
	assert.True(t, r.Replayed)
	assert.Equal(t, "charged", r.Value)
}
