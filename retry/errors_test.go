package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
