package idempotency

import (
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark"
)

// ErrInProgress is returned to a duplicate that arrives while another call
// holds the key: a call in another process (or on another Manager) whose
// lease has not run out, or, with [DuplicateReject], a call in this
// process. Nothing ran. It is retryable: once the holder completes, a
// retry gets the stored result; if the holder dies, its lease runs out and
// a retry executes. It does not wrap bulwark.ErrRejected, which means
// "the service is refused; a fallback may answer", so that a retry layer
// retries it and no cached fallback stands in for a result that is on its
// way.
var ErrInProgress = errors.New("idempotency: operation in progress")

// ErrKeyReuse is returned when a key is used again with a different
// payload fingerprint than the call that claimed it. Nothing ran; retrying
// cannot help, the caller must use a new key.
var ErrKeyReuse = errors.New("idempotency: key reused with a different payload")

// ErrStore is wrapped, with the store's own error, when the store fails
// where the Manager cannot go on safely: at the claim (the operation did
// not run: the Manager fails closed rather than risk a second execution),
// or when releasing the claim of a failed operation (the claim then stays
// until its lease runs out).
var ErrStore = errors.New("idempotency: store failed")

// ErrNotRecorded is wrapped, with the cause, when the operation ran but its
// result could not be stored: the store failed, or the lease was lost
// while the operation ran. The caller still gets the operation's value
// with this error, never a silent success; duplicates may run the
// operation again once the claim's lease runs out.
var ErrNotRecorded = errors.New("idempotency: result not recorded")

// ErrPanicked is returned to the calls that waited for a call that
// panicked. The panicking call's claim was released and its panic goes on
// up its own caller's stack; a retry executes again.
var ErrPanicked = errors.New("idempotency: the executing call panicked")

var (
	// ErrInvalid is wrapped by the error of a call with invalid input: a
	// nil Manager, function or context, an empty key, an invalid Config.
	// Nothing ran, nothing was claimed, no state changed; the error's
	// text names what was wrong.
	ErrInvalid = errors.New("idempotency: invalid input")

	errEmptyKey   = fmt.Errorf("%w: empty key", ErrInvalid)
	errNilManager = fmt.Errorf("%w: nil Manager", ErrInvalid)
	errNilFunc    = fmt.Errorf("%w: nil fn", ErrInvalid)
	errNilContext = fmt.Errorf("%w: nil context", ErrInvalid)
)

// ErrReentrant is wrapped, with [ErrInvalid], by the error a call gets
// when it would wait for itself: the operation running for a key (or
// anything it calls with its context) called Execute, Do or a Middleware
// of the same Manager with the same key and fingerprint. Waiting would
// deadlock, so the nested call returns at once; nothing ran for it.
var ErrReentrant = errors.New("idempotency: re-entrant call for a key its own operation holds")

// Permanent marks err as a permanent failure: with Config.CacheErrors set,
// the Manager stores it like a result and replays it to duplicates
// instead of running the operation again. A [Store] marks with it an
// error of Complete or Release that trying again cannot fix (a value its
// codec cannot encode), so that the Manager reports it at once instead of
// retrying the write. errors.Is and errors.As see through the mark.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// DefaultIsPermanent is the default Config.IsPermanent: it reports
// whether err may be stored and replayed when Config.CacheErrors is set.
// It accepts errors marked with [Permanent] and the service's final
// answers (errors wrapping bulwark.ErrFinal, such as an HTTP 422 or a
// declined card: the service considered the request and refused it, so a
// duplicate deserves the same answer). Call it from your own IsPermanent
// to extend it. It is safe for concurrent use.
func DefaultIsPermanent(err error) bool {
	return isMarkedPermanent(err) || bulwark.IsFinal(err)
}

// isMarkedPermanent reports whether err is marked with [Permanent].
func isMarkedPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
