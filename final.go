package bulwark

import "errors"

// ErrFinal is wrapped by every error that is the service's final answer:
// the service is up, it considered this request, and it refused it on its
// merits, so repeating the same request cannot help. Examples: an HTTP 4xx
// status other than 408 Request Timeout, 425 Too Early and 429 Too Many
// Requests (a 404, a 422 validation error), a declined card, a business
// rule that forbids the operation.
//
// Mark such errors with [Final], or give your own error type an
// Is(target error) bool method that reports true for ErrFinal. Every layer
// of bulwark agrees on what a final answer means, by default:
//
//   - retry does not retry it (retry.DefaultIsRetryable);
//   - the circuit breaker does not count it as a failure: the service
//     answered, so it counts as a success and is shown in
//     breaker.Stats.FinalAnswers (breaker.DefaultIsFailure);
//   - the fallback cache never answers it with an old value: the caller
//     sees the service's answer (cache.DefaultWhen);
//   - the idempotency layer, with CacheErrors set, stores it and replays
//     it to duplicates (idempotency.DefaultIsPermanent).
//
// A final answer differs from retry.Permanent, which says only "do not
// retry this": a permanent 500 is still an outage, counted by the breaker
// and answered from the fallback. A final answer is also permanent.
var ErrFinal = errors.New("bulwark: final answer")

// Final marks err as the service's final answer (see [ErrFinal]): the
// returned error wraps both err and ErrFinal, and its message is err's.
// Final(nil) is nil, and an error that is already final is returned as is.
// The returned error is immutable and safe to share between goroutines.
func Final(err error) error {
	if err == nil || errors.Is(err, ErrFinal) {
		return err
	}
	return &finalError{err: err}
}

// IsFinal reports whether err is the service's final answer: whether
// errors.Is(err, ErrFinal) holds. IsFinal(nil) is false.
func IsFinal(err error) bool {
	return err != nil && errors.Is(err, ErrFinal)
}

// finalError is the error Final returns.
type finalError struct{ err error }

func (e *finalError) Error() string        { return e.err.Error() }
func (e *finalError) Unwrap() error        { return e.err }
func (e *finalError) Is(target error) bool { return target == ErrFinal }
