package bench

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/bulwark-go/bulwark/breaker"
)

// The composition rows claim that every library's stack does the same
// work: fallback outermost, then a breaker that sees one outcome per call,
// then a timeout that bounds the whole retry loop, then the retry. These
// tests check that claim for each library, in virtual time.

// stackUnderTest is one library's stack, driven with any function.
type stackUnderTest struct {
	lib string
	// build makes the stack; call runs fn through it; counts returns the
	// successes and failures its breaker recorded.
	build func(t *testing.T) (call func(context.Context, func(context.Context) (int, error)) (int, error), counts func() (successes, failures int))
	// timeoutErr is what the stack returns when its timeout ends a call.
	timeoutErr error
}

var stacksUnderTest = []stackUnderTest{
	{"bulwark", func(t *testing.T) (func(context.Context, func(context.Context) (int, error)) (int, error), func() (int, int)) {
		s := newBulwarkStack(t, resetTimeout)
		return func(ctx context.Context, fn func(context.Context) (int, error)) (int, error) {
				return s.mw(fn)(ctx)
			}, func() (int, int) {
				st := s.br.Stats()
				return int(st.Successes), int(st.Failures)
			}
	}, breaker.ErrTimeout},
	{"gobreaker", func(t *testing.T) (func(context.Context, func(context.Context) (int, error)) (int, error), func() (int, int)) {
		s := newGobreakerStack(t, resetTimeout)
		return s.do, func() (int, int) {
			c := s.cb.Counts()
			return int(c.TotalSuccesses), int(c.TotalFailures)
		}
	}, context.DeadlineExceeded},
	{"failsafe", func(t *testing.T) (func(context.Context, func(context.Context) (int, error)) (int, error), func() (int, int)) {
		s := newFailsafeStack(t, resetTimeout)
		return s.do, func() (int, int) {
			m := s.cb.Metrics()
			return int(m.Successes()), int(m.Failures())
		}
	}, timeout.ErrExceeded},
}

// TestStackRetriesInsideBreaker: a call that fails twice and then succeeds
// is retried inside the breaker, which records one success and no failure.
func TestStackRetriesInsideBreaker(t *testing.T) {
	for _, st := range stacksUnderTest {
		t.Run("lib="+st.lib, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				call, counts := st.build(t)
				f := new(flaky)
				v, err := call(t.Context(), f.call)
				if err := f.check(0, v, err); err != nil {
					t.Fatal(err)
				}
				if s, fl := counts(); s != 1 || fl != 0 {
					t.Fatalf("breaker recorded %d successes and %d failures, want 1 and 0", s, fl)
				}
			})
		})
	}
}

// TestStackTimeoutBoundsRetries: a call that never answers is ended by the
// stack's timeout after requestTimeout, is not retried after it, and
// counts as one failure of the breaker. With nothing cached, the fallback
// has nothing to serve and the timeout's error comes through.
func TestStackTimeoutBoundsRetries(t *testing.T) {
	for _, st := range stacksUnderTest {
		t.Run("lib="+st.lib, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				call, counts := st.build(t)
				calls := 0
				hang := func(ctx context.Context) (int, error) {
					calls++
					<-ctx.Done()
					return 0, ctx.Err()
				}
				start := time.Now()
				_, err := call(t.Context(), hang)
				if !errors.Is(err, st.timeoutErr) {
					t.Fatalf("got %v, want %v", err, st.timeoutErr)
				}
				if d := time.Since(start); d != requestTimeout {
					t.Errorf("the call took %v, want %v", d, requestTimeout)
				}
				if calls != 1 {
					t.Errorf("the service was called %d times, want 1", calls)
				}
				if s, fl := counts(); s != 0 || fl != 1 {
					t.Errorf("breaker recorded %d successes and %d failures, want 0 and 1", s, fl)
				}
			})
		})
	}
}
