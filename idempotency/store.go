package idempotency

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// Store keeps the record of each key: who holds it while the operation
// runs, and the result once it completed. A Manager works through these
// six operations only; each must be atomic, so that a store shared by
// many processes (Redis, a database) gives the same guarantees as the
// in-memory one. Every method must be safe for concurrent use.
//
// Lifecycle of a key: [Store.Claim] creates an [InProgress] record owned by
// an owner token, with a lease; [Store.Extend] pushes the lease back while
// the operation runs; [Store.Complete] turns the record into a [Completed]
// one holding the result for a TTL; [Store.Release] deletes the claim so
// the operation can run again; [Store.Forget] deletes a completed record,
// so that an operation whose effects were undone can run again. An
// in-progress record whose lease ran out,
// and a completed record whose TTL ran out, no longer exist: Get does not
// find them and Claim replaces them.
//
// Values: a store either keeps the Go value it is given ([Record.Value];
// the in-memory store does, at no serialization cost) or encodes it and
// hands back the bytes with a decoder ([Record.Data] and [Record.Decode];
// a shared store must). [ValueOf] reads either form as the caller's type.
// A stored error comes back as an error with the same message; only a
// store that keeps Go values returns the original error value.
//
// A store that can extend many claims in one round trip should also
// implement [BatchExtender], so that lease renewal keeps up with any
// number of concurrent calls.
//
// The package idempotency/storetest checks an implementation against this
// contract.
type Store interface {
	// Claim atomically claims key for owner, unless a live record (an
	// in-progress one whose lease has not run out, or a completed one
	// within its TTL) exists. On success it creates an InProgress record
	// with the owner, the fingerprint and a lease that ends after lease,
	// and returns it with claimed true. Otherwise it returns the existing
	// record, unchanged, with claimed false; this holds for the same
	// owner too (claims are not re-entrant). lease is positive.
	Claim(ctx context.Context, key, owner, fingerprint string, lease time.Duration) (rec Record, claimed bool, err error)

	// Extend pushes back the lease of owner's in-progress claim on key to
	// end after lease from now. It returns an error wrapping
	// [ErrLeaseLost] if owner holds no live claim on key.
	Extend(ctx context.Context, key, owner string, lease time.Duration) error

	// Complete turns owner's in-progress claim on key into a Completed
	// record holding out, kept for ttl from now, and keeps the
	// fingerprint. It returns an error wrapping [ErrLeaseLost], and
	// changes nothing, if owner holds no live claim on key (the lease ran
	// out, another owner holds it, or it is already completed). ttl is
	// positive.
	Complete(ctx context.Context, key, owner string, out Outcome, ttl time.Duration) error

	// Release deletes owner's in-progress claim on key, so that the next
	// Claim succeeds. It returns an error wrapping [ErrLeaseLost], and
	// changes nothing, if owner holds no live claim on key.
	Release(ctx context.Context, key, owner string) error

	// Get returns the live record of key, with found false if there is
	// none.
	Get(ctx context.Context, key string) (rec Record, found bool, err error)
	// Forget deletes key's completed record, so that the next Claim
	// succeeds and the operation runs again (its effects were undone),
	// and starts a new generation of the key: the next Claim's record has
	// a Generation one higher than the forgotten record's. It leaves an
	// in-progress claim alone, and reports with forgotten whether it
	// deleted a record; a key without a live completed record is not an
	// error and keeps its generation.
	//
	// The generation outlives the record: a Claim, Release, lapsed lease
	// or Complete keeps it, for at least as long as the forgotten record
	// would have lived (its TTL). Only a key untouched for that long may
	// start again at generation 0.
	Forget(ctx context.Context, key string) (forgotten bool, err error)
}

// State is the state of a key's record.
type State uint8

const (
	// InProgress: an owner claimed the key and runs the operation.
	InProgress State = iota + 1
	// Completed: the operation finished; the record holds its result.
	Completed
)

// String returns "IN_PROGRESS" or "COMPLETED".
func (s State) String() string {
	switch s {
	case InProgress:
		return "IN_PROGRESS"
	case Completed:
		return "COMPLETED"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Record is what a Store holds for a key.
type Record struct {
	// State is InProgress or Completed.
	State State
	// Owner is the token of the claim's holder. A store may leave it
	// empty on completed records.
	Owner string
	// Fingerprint is the payload fingerprint given to Claim, kept for the
	// record's life; empty if none was given.
	Fingerprint string
	// Generation counts how many times the key's result was forgotten
	// (see [Store.Forget]): 0 for a key never forgotten. A claim, and the
	// record it completes into, belong to the key's current generation.
	// The Manager runs the operation under [GenerationKey](key,
	// Generation), so that a remote service sees a new idempotency key
	// once an execution was undone.
	Generation uint64
	// Expires is when the lease (in progress) or the TTL (completed) runs
	// out; zero if the store does not report it.
	Expires time.Time

	// The result of a completed record, in one of two forms: Value, for
	// stores that keep Go values; or Data with Decode, for stores that
	// encode them. A nil Decode means the first form.

	// Value is the value the operation returned, as given to Complete.
	Value any
	// Data is the encoded value.
	Data []byte
	// Decode decodes data into v, a non-nil pointer to the caller's result
	// type (as json.Unmarshal does).
	Decode func(data []byte, v any) error

	// Err is the stored error of an operation that failed permanently;
	// nil if it succeeded. A serializing store returns an error with the
	// original message. An error whose message was empty comes back with
	// the message "idempotency: stored error with no message" (wrapping
	// the original, in a store that keeps Go values).
	Err error
}

// Outcome is the result of an operation, as handed to [Store.Complete]:
// a value, or a permanent error (then Value is not stored).
type Outcome struct {
	// Value is the operation's value; not stored when Err is set.
	Value any
	// Err is the permanent error to store instead of a value; nil for a
	// success.
	Err error
}

// ErrLeaseLost is wrapped by the error a [Store] returns when an owner
// tries to extend, complete or release a claim it no longer holds: its
// lease ran out (and perhaps another owner claimed the key), or the key
// was already completed or released.
var ErrLeaseLost = errors.New("idempotency: lease lost")

// noMessageError stands for a stored error whose message is empty, so
// that its replay still says what it is; it wraps the original error.
type noMessageError struct{ err error }

func (e *noMessageError) Error() string { return "idempotency: stored error with no message" }
func (e *noMessageError) Unwrap() error { return e.err }

// withMessage returns err, or err wrapped in a noMessageError if its
// message is empty. It calls err.Error(), user code: never under a lock.
func withMessage(err error) error {
	if err != nil && err.Error() == "" {
		return &noMessageError{err}
	}
	return err
}

// ErrDecode is wrapped by the error returned when a stored result cannot
// be read as the caller's type: the value stored for the key has another
// type (the same key was used for operations with different result
// types), or its encoded form does not decode.
var ErrDecode = errors.New("idempotency: cannot decode stored result")

// ValueOf returns the value a completed record holds, as a T: rec.Value
// asserted to T, or rec.Data decoded with rec.Decode into a new T. A nil
// Value (stored by an operation whose result type is an interface) gives
// nil when T is an interface type. It returns an error wrapping
// [ErrDecode] if the value is not a T (a nil Value and a T that is not an
// interface included) or does not decode. ValueOf is what a Manager uses
// to replay a result; store implementations can use it to test that
// values survive a round trip.
func ValueOf[T any](rec Record) (T, error) {
	return valueOf[T](&rec)
}

func valueOf[T any](rec *Record) (T, error) {
	if rec.Decode != nil {
		p := new(T) // the decoder keeps no reference, but the compiler cannot know
		if err := rec.Decode(rec.Data, p); err != nil {
			return *p, fmt.Errorf("%w as %s: %w", ErrDecode, reflect.TypeFor[T](), err)
		}
		return *p, nil
	}
	var v T
	if rec.Value == nil {
		// A nil interface value, stored by an operation whose result type
		// is an interface: nil is a value of every interface type, and of
		// no other.
		if t := reflect.TypeFor[T](); t.Kind() != reflect.Interface {
			return v, fmt.Errorf("%w: stored value is nil (of an interface type), not %s", ErrDecode, t)
		}
		return v, nil
	}
	v, ok := rec.Value.(T)
	if !ok {
		return v, fmt.Errorf("%w: stored value is %T, not %s", ErrDecode, rec.Value, reflect.TypeFor[T]())
	}
	return v, nil
}

// GenerationKey returns the key an operation runs under in generation gen
// of key: key itself for generation 0, and key + "." + gen afterwards
// (e.g. "4a80…f3.1"). It is what [KeyFrom] returns inside a keyed call,
// and what the operation should send to a remote service as its own
// idempotency key (an Idempotency-Key header): retries of one execution,
// and a rerun after a crash in which the step never completed, send the
// same key; a rerun after the step was undone and its key forgotten sends
// a new one, so that the remote service does not replay the undone
// effect.
func GenerationKey(key string, gen uint64) string {
	if gen == 0 {
		return key
	}
	return key + "." + strconv.FormatUint(gen, 10)
}
