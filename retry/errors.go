package retry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Reasons retry gives up. A [*Error] unwraps to one of them (or to the
// context's error) and to the last attempt's error, so both can be tested
// with errors.Is.
var (
	// ErrExhausted: MaxAttempts attempts were made and the last one failed.
	ErrExhausted = errors.New("retry: attempts exhausted")
	// ErrRetryAfterTooLong: the failed attempt asked for a wait (a
	// Retry-After) longer than MaxRetryAfter.
	ErrRetryAfterTooLong = errors.New("retry: Retry-After exceeds MaxRetryAfter")
	// ErrDeadline: the next wait would end after the context's deadline,
	// so the next attempt could not run; retry gives up at once instead of
	// sleeping until the deadline.
	ErrDeadline = errors.New("retry: wait would end after the context deadline")
	// ErrMaxElapsedTime: the next wait would end more than MaxElapsedTime
	// after the first attempt started.
	ErrMaxElapsedTime = errors.New("retry: wait would end after MaxElapsedTime")
	// ErrRetryRefused: a retry was refused without running — its attempt
	// returned an error wrapping bulwark.ErrRejected (a bulkhead full, a
	// rate limit, an open circuit below) — after an attempt that ran and
	// failed. The call did run, so the give-up is a failure whose last
	// error is that attempt's, not a rejection: the Reason carries the
	// refusal's message but does not unwrap to bulwark.ErrRejected, so a
	// circuit breaker above counts the service's failure.
	ErrRetryRefused = errors.New("retry: retry refused")
)

// refused is the Reason of a give-up on a refused retry: ErrRetryRefused
// with the refusal's message.
func refused(rejection error) error {
	return fmt.Errorf("%w (%s)", ErrRetryRefused, rejection.Error())
}

// ErrInvalid is wrapped by every error this package returns for nil or
// invalid input: a nil *Retrier or function given to [Do] or to a
// [Middleware]'s Func, and every Config error (ErrInvalidConfig satisfies
// errors.Is(err, ErrInvalid)). Nothing runs and nothing is counted when
// such an error is returned.
var ErrInvalid = errors.New("retry: invalid")

// ErrInvalidConfig is wrapped by every error [New] returns for a Config it
// refuses. The message names the field. errors.Is(ErrInvalidConfig,
// ErrInvalid) holds.
var ErrInvalidConfig error = &invalidError{"retry: invalid config"}

var (
	errNilRetrier = fmt.Errorf("%w input: nil *Retrier", ErrInvalid)
	errNilFunc    = fmt.Errorf("%w input: nil Func", ErrInvalid)
)

// invalidError is a sentinel that is also ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// Error is the error [Do] returns when it gives up on an error it would
// otherwise have retried: the attempts ran out, a wait was refused (too
// long a Retry-After, past the context's deadline or MaxElapsedTime), or
// the caller's context ended. Errors that retry never retries (see [Do])
// are returned as they are, not wrapped in an Error.
//
// Error unwraps to both Reason and Last: errors.Is(err, ErrExhausted) and
// errors.Is(err, io.ErrUnexpectedEOF) both hold when the last attempt
// failed with io.ErrUnexpectedEOF, and errors.As reaches the last error's
// type. Do does not modify an Error after returning it, so it may be read
// from any goroutine.
type Error struct {
	// Name is the retrier's name (Config.Name: in a pipeline, the
	// executor's); empty when it has none.
	Name string
	// Attempts is the number of attempts made, at least 1.
	Attempts int
	// Reason says why retry stopped: ErrExhausted, ErrRetryAfterTooLong,
	// ErrDeadline, ErrMaxElapsedTime, ErrBudgetExhausted, or the context's error when the
	// caller's context ended (wrapping context.Cause too, when the cause
	// differs from the error).
	Reason error
	// Wait is the wait that was refused, for ErrRetryAfterTooLong,
	// ErrDeadline and ErrMaxElapsedTime; zero otherwise.
	Wait time.Duration
	// Last is the error the last attempt returned.
	Last error
}

// Error describes the give-up, for example
// "retry: gave up after 3 attempts: attempts exhausted; last error: EOF",
// or with a Name, `retry "notion": gave up after 3 attempts: …`, as the
// breaker's and the bulkhead's errors name their executor.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("retry")
	if e.Name != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.Name))
	}
	b.WriteString(": gave up after ")
	b.WriteString(strconv.Itoa(e.Attempts))
	if e.Attempts == 1 {
		b.WriteString(" attempt")
	} else {
		b.WriteString(" attempts")
	}
	if e.Reason != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Reason.Error(), "retry: "))
	}
	if e.Wait > 0 {
		b.WriteString(" (wait ")
		b.WriteString(e.Wait.String())
		b.WriteString(")")
	}
	if e.Last != nil {
		b.WriteString("; last error: ")
		b.WriteString(e.Last.Error())
	}
	return b.String()
}

// Unwrap returns Reason and Last, so that errors.Is and errors.As reach
// both.
func (e *Error) Unwrap() []error {
	return []error{e.Reason, e.Last}
}

// Permanent marks err as not worth retrying: [Do] returns at once, and the
// caller sees err itself, not the marker. Permanent(nil) is nil.
//
// The marker is found anywhere in the error chain; when the failed attempt
// returned the marked error directly, Do strips the marker, otherwise Do
// returns the attempt's error unchanged (its message and chain are the
// same as without the marker). Permanent wins over a Retry-After.
//
// Permanent is safe for concurrent use; the error it returns is immutable.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// After returns an error that wraps err and asks [Do] to wait at least d
// before the next attempt, like an HTTP Retry-After. A d of zero or less
// sets no minimum. After(nil, d) is nil.
//
// The wait is a minimum: when the backoff's own wait is longer, the
// backoff wins. A d above the Retrier's MaxRetryAfter makes Do give up at
// once with ErrRetryAfterTooLong, and so does a d that would end after the
// context's deadline (ErrDeadline) or MaxElapsedTime (ErrMaxElapsedTime).
//
// Any error with a method RetryAfter() time.Duration in its chain has the
// same effect; After is the shorthand for errors that have none.
//
// After is safe for concurrent use; the error it returns is immutable.
func After(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &afterError{err: err, d: d}
}

type afterError struct {
	err error
	d   time.Duration
}

func (e *afterError) Error() string             { return e.err.Error() }
func (e *afterError) Unwrap() error             { return e.err }
func (e *afterError) RetryAfter() time.Duration { return e.d }

// retryAfterer is the method an error carries to ask for a minimum wait.
type retryAfterer interface {
	RetryAfter() time.Duration
}

// WaitOf returns the minimum wait err asks for before the next attempt
// (set with [After], by an error with a RetryAfter() time.Duration method
// such as the one [FromResponse] builds from a Retry-After header), and
// whether it asks for one. A negative wait is returned as 0. It is what
// the pipeline uses to pause an executor's rate limiter when a service
// says to back off. WaitOf does not allocate; it is safe for concurrent
// use if err's RetryAfter method is.
func WaitOf(err error) (time.Duration, bool) {
	ra, ok := findInChain[retryAfterer](err)
	if !ok {
		return 0, false
	}
	return max(ra.RetryAfter(), 0), true
}

// findInChain returns the first error in err's tree, in the order
// errors.As visits it (Unwrap() error and Unwrap() []error), that is an E.
// Unlike errors.As it needs no pointer target, so it does not allocate;
// it does not consult As methods.
func findInChain[E any](err error) (E, bool) {
	for err != nil {
		if e, ok := err.(E); ok {
			return e, true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if e, ok := findInChain[E](inner); ok {
					return e, true
				}
			}
			err = nil
		default:
			err = nil
		}
	}
	var zero E
	return zero, false
}
