package breaker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

var errNotFound = bulwark.Final(errors.New("notion: 404 page not found"))

// The default predicate on each kind of error the issue names.
func TestDefaultIsFailure(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"plain error", live, errors.New("503 service unavailable"), true},
		{"breaker timeout", live, &timeoutError{err: context.DeadlineExceeded, after: time.Second}, true},
		{"final answer", live, errNotFound, false},
		{"wrapped final answer", live, fmt.Errorf("get page: %w", errNotFound), false},
		{"rejection by an inner layer", live, fmt.Errorf("bulkhead full: %w", bulwark.ErrRejected), false},
		{"caller cancelled", cancelled, context.Canceled, false},
		{"plain error after the caller cancelled", cancelled, errors.New("EOF"), false},
		{"canceled error", live, fmt.Errorf("read: %w", context.Canceled), false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, DefaultIsFailure(c.ctx, c.err), c.name)
	}
}

// Final answers never open the circuit: they count as successes and are
// shown in Stats.FinalAnswers.
func TestFinalAnswersDoNotOpen(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			b := newBreakerT(t, m.cfg(Config{}, &recorder{}))
			for range 10 {
				_, err := Do(context.Background(), b, func(context.Context) (int, error) { return 0, errNotFound })
				require.ErrorIs(t, err, errNotFound)
			}
			st := b.Stats()
			assert.Equal(t, Closed, st.State)
			assert.Equal(t, int64(10), st.FinalAnswers)
			assert.Equal(t, int64(10), st.Successes)
			assert.Zero(t, st.Failures)
		})
	}
}

// A final answer ends a failure run: the service is up.
func TestFinalAnswerBreaksConsecutiveFailures(t *testing.T) {
	b := newBreakerT(t, Config{FailureThreshold: 3})
	fail(b)
	fail(b)
	_, _ = Do(context.Background(), b, func(context.Context) (int, error) { return 0, errNotFound })
	fail(b)
	fail(b)
	assert.Equal(t, Closed, b.State(), "two failures after a final answer do not reach 3")
	fail(b)
	assert.Equal(t, Open, b.State())
}

// In HALF_OPEN a final answer is a successful probe.
func TestFinalAnswerProbeCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: time.Second})
		fail(b)
		require.Equal(t, Open, b.State())
		time.Sleep(time.Second)
		synctest.Wait()
		_, err := Do(context.Background(), b, func(context.Context) (int, error) { return 0, errNotFound })
		require.ErrorIs(t, err, errNotFound)
		assert.Equal(t, Closed, b.State())
	})
}

// A rejection by an inner layer (a bulkhead inside the breaker) counts
// neither way, and frees a probe slot.
func TestInnerRejectionIgnored(t *testing.T) {
	innerFull := fmt.Errorf("bulkhead full: %w", bulwark.ErrRejected)
	b := newBreakerT(t, Config{FailureThreshold: 2})
	for range 5 {
		_, err := Do(context.Background(), b, func(context.Context) (int, error) { return 0, innerFull })
		require.ErrorIs(t, err, bulwark.ErrRejected)
	}
	st := b.Stats()
	assert.Equal(t, Closed, st.State)
	assert.Zero(t, st.Failures)
	assert.Zero(t, st.Successes)
	assert.Equal(t, int64(5), st.Ignored)
}

// Rejections name the breaker, still match the sentinels, and cost no
// allocation.
func TestRejectionNamesBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New("notion", Config{FailureThreshold: 1, ResetTimeout: time.Second, HalfOpenMaxCalls: 1})
		require.NoError(t, err)
		fail(b)
		_, err = Do(context.Background(), b, func(context.Context) (int, error) { return 1, nil })
		require.EqualError(t, err, "breaker notion: circuit open")
		assert.ErrorIs(t, err, ErrOpen)
		assert.ErrorIs(t, err, bulwark.ErrRejected)
		assert.NotErrorIs(t, err, ErrTooManyProbes)

		_, err = b.Allow()
		require.EqualError(t, err, "breaker notion: circuit open")

		allocs := testing.AllocsPerRun(100, func() {
			_, _ = Do(context.Background(), b, func(context.Context) (int, error) { return 1, nil })
		})
		assert.Zero(t, allocs, "the open rejection allocates nothing")

		time.Sleep(time.Second)
		synctest.Wait()
		release := make(chan struct{})
		started := make(chan struct{})
		go func() {
			_, _ = Do(context.Background(), b, func(context.Context) (int, error) {
				close(started)
				<-release
				return 1, nil
			})
		}()
		<-started
		_, err = Do(context.Background(), b, func(context.Context) (int, error) { return 1, nil })
		require.EqualError(t, err, "breaker notion: too many half-open probes")
		assert.ErrorIs(t, err, ErrTooManyProbes)
		assert.ErrorIs(t, err, bulwark.ErrRejected)
		assert.NotErrorIs(t, err, ErrOpen)
		close(release)
		synctest.Wait()
	})
}

// An unnamed breaker returns the sentinels themselves.
func TestRejectionUnnamed(t *testing.T) {
	b, err := New("", Config{FailureThreshold: 1})
	require.NoError(t, err)
	fail(b)
	_, err = Do(context.Background(), b, func(context.Context) (int, error) { return 1, nil })
	assert.Same(t, ErrOpen, err)
}
