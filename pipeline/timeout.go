package pipeline

import (
	"errors"
	"math"
	"time"
)

// forever is the AttemptTimeout that means no timeout, like 0.
const forever = time.Duration(math.MaxInt64)

// ErrAttemptTimeout is the cause of the context of an attempt that ran
// longer than the executor's Config.AttemptTimeout (context.Cause
// returns it inside the attempt), and the error an attempt that failed
// because of it returns wraps, together with the attempt's own error
// (typically context.DeadlineExceeded):
//
//	errors.Is(err, pipeline.ErrAttemptTimeout) // the attempt timed out
//
// A timed-out attempt is transient: the retry layer retries it, and the
// breaker counts it as a failure (once per call, however many attempts
// time out).
var ErrAttemptTimeout = errors.New("pipeline: attempt timed out")

// attemptTimeoutError is an attempt's error after its timeout passed.
type attemptTimeoutError struct {
	timeout time.Duration
	err     error
}

func (e *attemptTimeoutError) Error() string {
	return "pipeline: attempt timed out after " + e.timeout.String() + ": " + e.err.Error()
}

func (e *attemptTimeoutError) Unwrap() []error { return []error{ErrAttemptTimeout, e.err} }
