package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

func TestErrorMessageAndUnwrap(t *testing.T) {
	for _, tc := range []struct {
		err  *retry.Error
		want string
	}{
		{&retry.Error{Attempts: 3, Reason: retry.ErrExhausted, Last: io.EOF},
			"retry: gave up after 3 attempts: attempts exhausted; last error: EOF"},
		{&retry.Error{Attempts: 1, Reason: retry.ErrRetryAfterTooLong, Wait: 10 * time.Minute, Last: io.EOF},
			"retry: gave up after 1 attempt: Retry-After exceeds MaxRetryAfter (wait 10m0s); last error: EOF"},
		{&retry.Error{Attempts: 2, Reason: context.Canceled, Last: io.EOF},
			"retry: gave up after 2 attempts: context canceled; last error: EOF"},
		{&retry.Error{Name: "notion", Attempts: 3, Reason: retry.ErrExhausted, Last: io.EOF},
			`retry "notion": gave up after 3 attempts: attempts exhausted; last error: EOF`},
	} {
		assert.EqualError(t, tc.err, tc.want)
		assert.ErrorIs(t, tc.err, tc.err.Reason)
		assert.ErrorIs(t, tc.err, io.EOF)
	}
}

type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprintf("code %d", e.code) }

func TestErrorAsReachesLastErrorType(t *testing.T) {
	var err error = &retry.Error{Attempts: 3, Reason: retry.ErrExhausted, Last: fmt.Errorf("call: %w", &codeError{503})}
	var ce *codeError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 503, ce.code)
}

func TestPermanent(t *testing.T) {
	assert.NoError(t, retry.Permanent(nil))
	err := retry.Permanent(io.EOF)
	assert.Equal(t, "EOF", err.Error(), "the marker does not change the message")
	assert.ErrorIs(t, err, io.EOF)
	assert.Same(t, io.EOF, errors.Unwrap(err))
}

func TestAfter(t *testing.T) {
	assert.NoError(t, retry.After(nil, time.Second))
	err := retry.After(io.EOF, 3*time.Second)
	assert.Equal(t, "EOF", err.Error())
	assert.ErrorIs(t, err, io.EOF)
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	assert.Equal(t, 3*time.Second, ra.RetryAfter())
}

func TestMarkersAreFoundInJoinedErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{NoJitter: true, MaxAttempts: 5})

		joined := errors.Join(errBoom, retry.Permanent(io.EOF))
		calls := 0
		_, err := retry.Do(context.Background(), r, func(context.Context) (int, error) {
			calls++
			return 0, joined
		})
		assert.Equal(t, 1, calls, "a Permanent inside errors.Join stops retry")
		assert.Same(t, joined, err)

		s := failing(1, fmt.Errorf("%w and %w", errBoom, retry.After(io.EOF, 2*time.Second)))
		_, err = retry.Do(context.Background(), r, s.fn)
		require.NoError(t, err)
		assert.Equal(t, []time.Duration{2 * time.Second}, s.waits(), "an After inside a multi-%w error is honoured")
	})
}

func TestCauseThatWrapsTheContextError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{InitialInterval: time.Minute})
		ctx, cancel := context.WithCancelCause(context.Background())
		cause := fmt.Errorf("shutdown: %w", context.Canceled)
		time.AfterFunc(time.Second, func() { cancel(cause) })

		_, err := retry.Do(ctx, r, always(errBoom).fn)

		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.Same(t, cause, re.Reason, "the cause already says context canceled")
		assert.EqualError(t, err, "retry: gave up after 1 attempt: shutdown: context canceled; last error: boom")
	})
}

// A named retrier's give-up names it, as the pipeline's executors do.
func TestErrorNamesTheRetrier(t *testing.T) {
	r, err := retry.New(retry.Config{Name: "notion", MaxAttempts: 2, NoWait: true})
	require.NoError(t, err)
	_, err = retry.Do(context.Background(), r, func(context.Context) (int, error) { return 0, io.EOF })
	var e *retry.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "notion", e.Name)
	assert.EqualError(t, err, `retry "notion": gave up after 2 attempts: attempts exhausted; last error: EOF`)
}

// A retry refused without running, after an attempt that ran and failed,
// is a failure with that attempt's error — not a rejection, which a
// breaker would ignore. A first attempt refused stays a rejection.
func TestRefusedRetryIsAFailure(t *testing.T) {
	full := fmt.Errorf("bulkhead %q: full: %w", "notion", bulwark.ErrRejected)
	outage := errors.New("503")
	var attempts int
	var events []bulwark.EventKind
	r, err := retry.New(retry.Config{Name: "notion", MaxAttempts: 3, NoWait: true,
		OnEvent: func(ev bulwark.Event) { events = append(events, ev.Kind) }})
	require.NoError(t, err)
	ctx, report := bulwark.WithReport(context.Background())
	v, err := retry.Do(ctx, r, func(context.Context) (int, error) {
		attempts++
		if attempts == 1 {
			return 7, outage
		}
		return 0, full
	})
	assert.Equal(t, 7, v, "the value of the attempt that ran")
	assert.ErrorIs(t, err, retry.ErrRetryRefused)
	assert.ErrorIs(t, err, outage)
	assert.NotErrorIs(t, err, bulwark.ErrRejected, "the call ran: not a rejection")
	assert.EqualError(t, err, `retry "notion": gave up after 1 attempt: retry refused (bulkhead "notion": full: bulwark: rejected); last error: 503`)
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 1, re.Attempts)
	assert.Equal(t, 1, report.Attempts())
	assert.Equal(t, []bulwark.EventKind{bulwark.RetryAttempt, bulwark.RetryExhausted}, events)

	// The first attempt refused: the rejection as it is.
	_, err = retry.Do(context.Background(), r, func(context.Context) (int, error) { return 0, full })
	assert.Same(t, full, err)
}
