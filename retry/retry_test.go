package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// script is an operation whose attempts fail with errs[i] (nil = success)
// and which records when each attempt started. Past the end of errs it
// keeps returning the last entry.
type script struct {
	errs   []error
	starts []time.Time
}

func (s *script) fn(ctx context.Context) (int, error) {
	n := len(s.starts)
	s.starts = append(s.starts, time.Now())
	err := s.errs[min(n, len(s.errs)-1)]
	return n + 1, err
}

// waits returns the time between consecutive attempt starts. The scripted
// attempts take no (virtual) time, so these are the waits retry made.
func (s *script) waits() []time.Duration {
	var w []time.Duration
	for i := 1; i < len(s.starts); i++ {
		w = append(w, s.starts[i].Sub(s.starts[i-1]))
	}
	return w
}

func failing(n int, err error) *script {
	s := &script{}
	for range n {
		s.errs = append(s.errs, err)
	}
	s.errs = append(s.errs, nil)
	return s
}

func always(err error) *script { return &script{errs: []error{err}} }

var errBoom = errors.New("boom")

func mustNew(t *testing.T, cfg retry.Config) *retry.Retrier {
	t.Helper()
	r, err := retry.New(cfg)
	require.NoError(t, err)
	return r
}

// events collects events under a mutex (listeners may be shared).
type events struct {
	mu  sync.Mutex
	all []bulwark.Event
}

func (e *events) listen(ev bulwark.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) list() []bulwark.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]bulwark.Event(nil), e.all...)
}

func TestFirstTrySuccess(t *testing.T) {
	var ev events
	r := mustNew(t, retry.Config{OnEvent: ev.listen})
	s := failing(0, nil)
	ctx, report := bulwark.WithReport(context.Background())

	v, err := retry.Do(ctx, r, s.fn)

	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.Len(t, s.starts, 1)
	assert.Equal(t, 1, report.Attempts(), "a first-try success records 1 attempt")
	assert.Empty(t, ev.list(), "no event for a first-try success")
}

func TestExactWaitSequenceWithoutJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{
			MaxAttempts:     6,
			InitialInterval: 100 * time.Millisecond,
			Multiplier:      2,
			MaxInterval:     500 * time.Millisecond,
			NoJitter:        true,
		})
		s := always(errBoom)
		start := time.Now()

		_, err := retry.Do(context.Background(), r, s.fn)

		ms := time.Millisecond
		assert.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 500 * ms, 500 * ms}, s.waits())
		assert.Equal(t, 1700*ms, time.Since(start), "no time is spent after the last attempt")
		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 6, re.Attempts)
		assert.ErrorIs(t, err, retry.ErrExhausted)
		assert.ErrorIs(t, err, errBoom)
	})
}

func TestDefaultWaitSequenceWithoutJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{NoJitter: true, MaxAttempts: 4})
		s := always(errBoom)
		_, err := retry.Do(context.Background(), r, s.fn)
		require.ErrorIs(t, err, retry.ErrExhausted)
		// 500ms, then ×1.5 each time.
		assert.Equal(t, []time.Duration{500 * time.Millisecond, 750 * time.Millisecond, 1125 * time.Millisecond}, s.waits())
	})
}

func TestJitterStaysWithinBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r retry.Retrier // the zero Retrier: the defaults, factor 0.5
		intervals := []time.Duration{500 * time.Millisecond, 750 * time.Millisecond}
		var lowSeen, highSeen bool
		for range 300 {
			s := always(errBoom)
			_, err := retry.Do(context.Background(), &r, s.fn)
			require.ErrorIs(t, err, retry.ErrExhausted)
			w := s.waits()
			require.Len(t, w, 2)
			for k, got := range w {
				i := intervals[k]
				lo, hi := i/2, i+i/2+1 // backoff/v4 draws from [i-f·i, i+f·i+1)
				require.GreaterOrEqual(t, got, lo, "wait %d", k+1)
				require.Less(t, got, hi, "wait %d", k+1)
				lowSeen = lowSeen || got < i*8/10
				highSeen = highSeen || got > i*12/10
			}
		}
		assert.True(t, lowSeen && highSeen, "waits spread over the jitter range")
	})
}

func TestAttemptCounts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		maxAttempts int
		failures    int
		wantCalls   int
		wantErr     bool
	}{
		{"default, success on 3rd", 0, 2, 3, false},
		{"default, never succeeds", 0, 10, 3, true},
		{"one attempt only", 1, 1, 1, true},
		{"five, success on 5th", 5, 4, 5, false},
		{"five, success on 2nd", 5, 1, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := mustNew(t, retry.Config{MaxAttempts: tc.maxAttempts})
				s := failing(tc.failures, errBoom)
				ctx, report := bulwark.WithReport(context.Background())

				v, err := retry.Do(ctx, r, s.fn)

				assert.Len(t, s.starts, tc.wantCalls)
				assert.Equal(t, tc.wantCalls, report.Attempts())
				assert.Equal(t, tc.wantCalls, v, "the last attempt's value is returned")
				if !tc.wantErr {
					require.NoError(t, err)
					return
				}
				var re *retry.Error
				require.ErrorAs(t, err, &re)
				assert.Equal(t, tc.wantCalls, re.Attempts)
				assert.ErrorIs(t, err, retry.ErrExhausted)
				assert.ErrorIs(t, err, errBoom)
				assert.Contains(t, err.Error(), fmt.Sprintf("after %d attempt", tc.wantCalls))
			})
		})
	}
}

func TestMaxElapsedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{
			MaxAttempts:     10,
			InitialInterval: time.Second,
			Multiplier:      1,
			NoJitter:        true,
			MaxElapsedTime:  3500 * time.Millisecond,
		})
		s := always(errBoom)
		start := time.Now()

		_, err := retry.Do(context.Background(), r, s.fn)

		// Attempts at 0s, 1s, 2s, 3s; a fifth would start at 4s > 3.5s.
		assert.Len(t, s.starts, 4)
		assert.Equal(t, 3*time.Second, time.Since(start), "gives up at once, without the useless wait")
		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.ErrorIs(t, err, retry.ErrMaxElapsedTime)
		assert.ErrorIs(t, err, errBoom)
		assert.Equal(t, 4, re.Attempts)
		assert.Equal(t, time.Second, re.Wait)
	})
}

func TestMaxElapsedTimeCountsAttemptDurations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{
			MaxAttempts:     10,
			InitialInterval: time.Second,
			Multiplier:      1,
			NoJitter:        true,
			MaxElapsedTime:  5 * time.Second,
		})
		calls := 0
		slow := func(ctx context.Context) (int, error) {
			calls++
			time.Sleep(2 * time.Second) // virtual time
			return 0, errBoom
		}
		start := time.Now()

		_, err := retry.Do(context.Background(), r, slow)

		// Attempt 1: 0–2s, wait to 3s, attempt 2: 3–5s; a wait to 6s is refused.
		assert.Equal(t, 2, calls)
		assert.Equal(t, 5*time.Second, time.Since(start))
		assert.ErrorIs(t, err, retry.ErrMaxElapsedTime)
	})
}

func TestPermanentStopsAtOnce(t *testing.T) {
	var ev events
	r := mustNew(t, retry.Config{MaxAttempts: 5, OnEvent: ev.listen})

	t.Run("first attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := always(retry.Permanent(errBoom))
			ctx, report := bulwark.WithReport(context.Background())
			_, err := retry.Do(ctx, r, s.fn)
			assert.Len(t, s.starts, 1)
			assert.Same(t, errBoom, err, "the caller sees the error without the marker")
			assert.Equal(t, 1, report.Attempts())
		})
	})

	t.Run("later attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &script{errs: []error{errBoom, retry.Permanent(io.ErrUnexpectedEOF)}}
			ctx, report := bulwark.WithReport(context.Background())
			start := time.Now()
			_, err := retry.Do(ctx, r, s.fn)
			assert.Len(t, s.starts, 2)
			assert.Same(t, io.ErrUnexpectedEOF, err)
			assert.Equal(t, 2, report.Attempts())
			assert.Less(t, time.Since(start), time.Second, "only the one wait before attempt 2")
		})
	})

	t.Run("wrapped marker", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			wrapped := fmt.Errorf("calling notion: %w", retry.Permanent(errBoom))
			s := always(wrapped)
			_, err := retry.Do(context.Background(), r, s.fn)
			assert.Len(t, s.starts, 1)
			assert.Same(t, wrapped, err, "a marker deeper in the chain leaves the error unchanged")
			assert.ErrorIs(t, err, errBoom)
			assert.Equal(t, "calling notion: boom", err.Error())
		})
	})

	t.Run("wins over Retry-After", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := always(retry.Permanent(retry.After(errBoom, time.Second)))
			_, err := retry.Do(context.Background(), r, s.fn)
			assert.Len(t, s.starts, 1)
			assert.ErrorIs(t, err, errBoom)
		})
	})

	for _, e := range ev.list() {
		assert.NotEqual(t, bulwark.RetryExhausted, e.Kind, "a permanent error is not an exhaustion")
	}
}

func TestRejectedIsNeverRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errOpen := fmt.Errorf("breaker: circuit open: %w", bulwark.ErrRejected)
		var ev events
		asked := false
		r := mustNew(t, retry.Config{
			MaxAttempts: 5,
			OnEvent:     ev.listen,
			IsRetryable: func(error) bool { asked = true; return true },
		})
		s := always(errOpen)
		ctx, report := bulwark.WithReport(context.Background())
		start := time.Now()

		_, err := retry.Do(ctx, r, s.fn)

		assert.Len(t, s.starts, 1)
		assert.Same(t, errOpen, err, "the rejection is returned as it is")
		assert.Zero(t, time.Since(start))
		assert.Equal(t, 1, report.Attempts())
		assert.False(t, asked, "IsRetryable cannot override the rule")
		assert.Empty(t, ev.list())
	})
}

// TestRejectedAfterAFailureStops: a retry refused without running stops
// the retries, and the call fails with the error of the attempt that ran
// (ErrRetryRefused as the reason), not with the rejection.
func TestRejectedAfterAFailureStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errFull := fmt.Errorf("bulkhead full: %w", bulwark.ErrRejected)
		r := mustNew(t, retry.Config{MaxAttempts: 5})
		s := &script{errs: []error{errBoom, errFull, nil}}
		_, err := retry.Do(context.Background(), r, s.fn)
		assert.Len(t, s.starts, 2)
		assert.ErrorIs(t, err, retry.ErrRetryRefused)
		assert.ErrorIs(t, err, errBoom)
		assert.NotErrorIs(t, err, bulwark.ErrRejected)
	})
}

func TestIsRetryable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errBadRequest := errors.New("bad request")
		var seen []error
		r := mustNew(t, retry.Config{
			MaxAttempts: 5,
			IsRetryable: func(err error) bool {
				seen = append(seen, err)
				return !errors.Is(err, errBadRequest)
			},
		})
		s := &script{errs: []error{errBoom, errBadRequest, nil}}
		ctx, report := bulwark.WithReport(context.Background())

		_, err := retry.Do(ctx, r, s.fn)

		assert.Len(t, s.starts, 2)
		assert.Same(t, errBadRequest, err, "a non-retryable error is returned as it is")
		assert.Equal(t, []error{errBoom, errBadRequest}, seen)
		assert.Equal(t, 2, report.Attempts())
	})
}

func TestContextCancelledDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		r := mustNew(t, retry.Config{InitialInterval: 10 * time.Second, NoJitter: true, OnEvent: ev.listen})
		ctx, cancel := context.WithCancel(context.Background())
		ctx, report := bulwark.WithReport(ctx)
		s := always(errBoom)
		start := time.Now()

		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err = retry.Do(ctx, r, s.fn)
		}()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Do returned before the context was cancelled")
		default:
		}
		cancel()
		<-done

		assert.Equal(t, 3*time.Second, time.Since(start), "the wait ends the moment ctx is done")
		assert.Len(t, s.starts, 1)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, errBoom)
		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 1, re.Attempts)
		assert.Equal(t, 1, report.Attempts())
		kinds := []bulwark.EventKind{}
		for _, e := range ev.list() {
			kinds = append(kinds, e.Kind)
		}
		assert.Equal(t, []bulwark.EventKind{bulwark.RetryAttempt, bulwark.RetryExhausted}, kinds)
	})
}

func TestContextCancelCauseIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errShutdown := errors.New("shutting down")
		r := mustNew(t, retry.Config{InitialInterval: 10 * time.Second})
		ctx, cancel := context.WithCancelCause(context.Background())
		s := always(errBoom)
		time.AfterFunc(time.Second, func() { cancel(errShutdown) })

		_, err := retry.Do(ctx, r, s.fn)

		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, errShutdown)
		assert.ErrorIs(t, err, errBoom)
		assert.Contains(t, err.Error(), "shutting down")
	})
}

func TestContextDoneAfterAttemptIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{MaxAttempts: 5})
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		fn := func(ctx context.Context) (int, error) {
			calls++
			cancel()
			return 0, ctx.Err()
		}
		_, err := retry.Do(ctx, r, fn)
		assert.Equal(t, 1, calls)
		assert.ErrorIs(t, err, context.Canceled)
		var re *retry.Error
		assert.ErrorAs(t, err, &re)
	})
}

func TestWaitPastDeadlineGivesUpAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{MaxAttempts: 5, NoJitter: true}) // waits 500ms, 750ms, ...
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s := always(errBoom)
		start := time.Now()

		_, err := retry.Do(ctx, r, s.fn)

		// Attempt 1 at 0, attempt 2 at 0.5s; the 750ms wait would end at
		// 1.25s, after the deadline.
		assert.Len(t, s.starts, 2)
		assert.Equal(t, 500*time.Millisecond, time.Since(start), "no sleeping until the deadline")
		assert.ErrorIs(t, err, retry.ErrDeadline)
		assert.ErrorIs(t, err, errBoom)
		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 750*time.Millisecond, re.Wait)
	})
}

func TestRetryAfterSetsMinimumWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{NoJitter: true}) // backoff waits 500ms, 750ms
		s := &script{errs: []error{retry.After(errBoom, 3*time.Second), retry.After(errBoom, 100*time.Millisecond), nil}}

		_, err := retry.Do(context.Background(), r, s.fn)

		require.NoError(t, err)
		assert.Equal(t, []time.Duration{3 * time.Second, 750 * time.Millisecond}, s.waits(),
			"the longer of Retry-After and the backoff")
	})
}

// throttled is an error type of some client library that says how long to
// wait, through the method retry looks for.
type throttled struct{ wait time.Duration }

func (e throttled) Error() string             { return "throttled" }
func (e throttled) RetryAfter() time.Duration { return e.wait }

func TestRetryAfterMethodOnAnyError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{NoJitter: true})
		s := failing(1, fmt.Errorf("call: %w", throttled{wait: 4 * time.Second}))
		_, err := retry.Do(context.Background(), r, s.fn)
		require.NoError(t, err)
		assert.Equal(t, []time.Duration{4 * time.Second}, s.waits())
	})
}

func TestRetryAfterBeyondMaxRetryAfterGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		r := mustNew(t, retry.Config{MaxRetryAfter: time.Minute, OnEvent: ev.listen})
		s := always(retry.After(errBoom, 2*time.Minute))
		start := time.Now()

		_, err := retry.Do(context.Background(), r, s.fn)

		assert.Len(t, s.starts, 1)
		assert.Zero(t, time.Since(start), "gives up at once")
		assert.ErrorIs(t, err, retry.ErrRetryAfterTooLong)
		assert.ErrorIs(t, err, errBoom)
		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 2*time.Minute, re.Wait)
		assert.Contains(t, err.Error(), "2m0s")
		evs := ev.list()
		require.Len(t, evs, 1)
		assert.Equal(t, bulwark.RetryExhausted, evs[0].Kind)
		assert.Equal(t, 1, evs[0].Attempt)
		assert.Same(t, re, evs[0].Err)
	})
}

func TestRetryAfterDefaultMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r retry.Retrier
		ok := failing(1, retry.After(errBoom, 5*time.Minute))
		_, err := retry.Do(context.Background(), &r, ok.fn)
		require.NoError(t, err, "exactly MaxRetryAfter (5m by default) is honoured")
		assert.Equal(t, []time.Duration{5 * time.Minute}, ok.waits())

		tooLong := always(retry.After(errBoom, 5*time.Minute+time.Second))
		_, err = retry.Do(context.Background(), &r, tooLong.fn)
		assert.ErrorIs(t, err, retry.ErrRetryAfterTooLong)
	})
}

func TestRetryAfterBeyondDeadlineGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s := always(retry.After(errBoom, 30*time.Second))
		start := time.Now()

		_, err := retry.Do(ctx, r, s.fn)

		assert.Len(t, s.starts, 1)
		assert.Zero(t, time.Since(start))
		assert.ErrorIs(t, err, retry.ErrDeadline)
		assert.ErrorIs(t, err, errBoom)
		assert.NoError(t, ctx.Err(), "gave up before the deadline, not at it")
	})
}

func TestRetryAfterBeyondMaxElapsedTimeGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{MaxElapsedTime: 20 * time.Second})
		s := always(retry.After(errBoom, 30*time.Second))
		_, err := retry.Do(context.Background(), r, s.fn)
		assert.Len(t, s.starts, 1)
		assert.ErrorIs(t, err, retry.ErrMaxElapsedTime)
	})
}

func TestNoWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{NoWait: true, MaxAttempts: 4})
		s := failing(3, errBoom)
		start := time.Now()
		v, err := retry.Do(context.Background(), r, s.fn)
		require.NoError(t, err)
		assert.Equal(t, 4, v)
		assert.Zero(t, time.Since(start))

		// A Retry-After still applies.
		s = failing(1, retry.After(errBoom, 2*time.Second))
		_, err = retry.Do(context.Background(), r, s.fn)
		require.NoError(t, err)
		assert.Equal(t, []time.Duration{2 * time.Second}, s.waits())
	})
}

func TestOnEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		r := mustNew(t, retry.Config{
			InitialInterval: time.Second,
			Multiplier:      2,
			NoJitter:        true,
			OnEvent:         ev.listen,
		})
		errA, errB, errC := errors.New("a"), errors.New("b"), errors.New("c")
		s := &script{errs: []error{errA, errB, errC}}
		start := time.Now()

		ctx := context.WithValue(context.Background(), ctxKey{}, "call-1")
		_, err := retry.Do(ctx, r, s.fn)

		evs := ev.list()
		require.Len(t, evs, 3)
		assert.Equal(t, bulwark.Event{Kind: bulwark.RetryAttempt, Time: start, Err: errA, Duration: time.Second, Attempt: 1, Context: ctx}, evs[0])
		assert.Equal(t, bulwark.Event{Kind: bulwark.RetryAttempt, Time: start.Add(time.Second), Err: errB, Duration: 2 * time.Second, Attempt: 2, Context: ctx}, evs[1])
		assert.Same(t, ctx, evs[2].Context, "events carry the call's context")
		assert.Equal(t, bulwark.RetryExhausted, evs[2].Kind)
		assert.Equal(t, 3, evs[2].Attempt)
		assert.Equal(t, start.Add(3*time.Second), evs[2].Time)
		assert.Same(t, err, evs[2].Err, "the exhausted event carries the returned error")
		assert.ErrorIs(t, evs[2].Err, errC)
	})
}

func TestOnEventMayCallBack(t *testing.T) {
	// A listener runs on the caller's goroutine with nothing held, so it
	// may use the same Retrier.
	synctest.Test(t, func(t *testing.T) {
		var r *retry.Retrier
		nested := 0
		r = mustNew(t, retry.Config{NoWait: true, OnEvent: func(e bulwark.Event) {
			if e.Kind == bulwark.RetryAttempt {
				_, err := retry.Do(context.Background(), r, func(context.Context) (int, error) { return 0, nil })
				assert.NoError(t, err)
				nested++
			}
		}})
		_, err := retry.Do(context.Background(), r, failing(2, errBoom).fn)
		require.NoError(t, err)
		assert.Equal(t, 2, nested)
	})
}

func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		r := mustNew(t, retry.Config{MaxAttempts: 4, OnEvent: ev.listen})
		var wg sync.WaitGroup
		results := make([]int, 50)
		for i := range results {
			wg.Go(func() {
				s := failing(i%4, errBoom) // 0 to 3 failures, all within 4 attempts
				ctx, report := bulwark.WithReport(context.Background())
				v, err := retry.Do(ctx, r, s.fn)
				if assert.NoError(t, err) {
					results[i] = v
					assert.Equal(t, v, report.Attempts())
				}
			})
		}
		wg.Wait()
		for i, v := range results {
			assert.Equal(t, i%4+1, v)
		}
		want := 0
		for i := range results {
			want += i % 4 // one retry:attempt event per failure
		}
		attempts := 0
		for _, e := range ev.list() {
			assert.Equal(t, bulwark.RetryAttempt, e.Kind)
			attempts++
		}
		assert.Equal(t, want, attempts)
	})
}

func TestMiddleware(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{NoWait: true})
		s := failing(2, errBoom)
		var outer int
		count := func(next bulwark.Func[int]) bulwark.Func[int] {
			return func(ctx context.Context) (int, error) { outer++; return next(ctx) }
		}
		call := bulwark.Chain(count, retry.Middleware[int](r))(s.fn)
		ctx, report := bulwark.WithReport(context.Background())

		v, err := call(ctx)

		require.NoError(t, err)
		assert.Equal(t, 3, v)
		assert.Equal(t, 1, outer, "a layer outside retry sees one logical call")
		assert.Equal(t, 3, report.Attempts())
	})
}

func TestZeroRetrierUsesDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r retry.Retrier
		s := always(errBoom)
		_, err := retry.Do(context.Background(), &r, s.fn)
		assert.ErrorIs(t, err, retry.ErrExhausted)
		assert.Len(t, s.starts, retry.DefaultMaxAttempts)
	})
}

func TestNilArguments(t *testing.T) {
	calls := 0
	fn := func(context.Context) (int, error) { calls++; return 1, nil }

	v, err := retry.Do(context.Background(), nil, fn)
	assert.Error(t, err)
	assert.Contains(t, err.Error(), "nil *Retrier")
	assert.Zero(t, v)

	_, err = retry.Do[int](context.Background(), &retry.Retrier{}, nil)
	assert.Error(t, err)
	assert.Contains(t, err.Error(), "nil Func")

	_, err = retry.Middleware[int](nil)(fn)(context.Background())
	assert.Error(t, err)
	assert.Zero(t, calls)
}

func TestPanicPropagates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{MaxAttempts: 5})
		calls := 0
		fn := func(context.Context) (int, error) {
			calls++
			if calls == 2 {
				panic("attempt 2 exploded")
			}
			return 0, errBoom
		}
		assert.PanicsWithValue(t, "attempt 2 exploded", func() {
			_, _ = retry.Do(context.Background(), r, fn)
		})
		assert.Equal(t, 2, calls, "a panic is not retried")
	})
}

func TestFirstTrySuccessDoesNotAllocate(t *testing.T) {
	r := mustNew(t, retry.Config{OnEvent: func(bulwark.Event) {}})
	fn := func(context.Context) (int, error) { return 1, nil }
	reportCtx, _ := bulwark.WithReport(context.Background())
	mw := retry.Middleware[int](r)(fn)

	for name, call := range map[string]func(){
		"Do":             func() { _, _ = retry.Do(context.Background(), r, fn) },
		"Do with report": func() { _, _ = retry.Do(reportCtx, r, fn) },
		"Middleware":     func() { _, _ = mw(reportCtx) },
	} {
		assert.Zero(t, testing.AllocsPerRun(1000, call), name)
	}
}

func TestFailTwiceWithoutWaitAllocations(t *testing.T) {
	// The retry path itself builds its backoff state on the stack; with no
	// wait there is no timer either.
	r := mustNew(t, retry.Config{NoWait: true})
	reportCtx, report := bulwark.WithReport(context.Background())
	n := 0
	fn := func(context.Context) (int, error) {
		n++
		if n%3 != 0 {
			return 0, errBoom
		}
		return 1, nil
	}
	allocs := testing.AllocsPerRun(1000, func() { _, _ = retry.Do(reportCtx, r, fn) })
	assert.Zero(t, allocs)
	assert.Equal(t, 3, report.Attempts())
}

func TestRetryWithWaitsAllocatesOnlyItsTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		timerAllocs := testing.AllocsPerRun(100, func() { time.NewTimer(time.Hour).Stop() })
		r := mustNew(t, retry.Config{InitialInterval: time.Millisecond, NoJitter: true})
		n := 0
		fn := func(context.Context) (int, error) {
			n++
			if n%3 != 0 {
				return 0, errBoom
			}
			return 1, nil
		}
		allocs := testing.AllocsPerRun(100, func() { _, _ = retry.Do(context.Background(), r, fn) })
		assert.Equal(t, timerAllocs, allocs, "one timer, reused across waits; the backoff state stays on the stack")
	})
}

type ctxKey struct{}
