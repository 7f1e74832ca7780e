package pipeline

import "time"

// Result is what one call through the stack produced, with what each layer
// did to it. It is built from the call's bulwark.Report.
type Result[T any] struct {
	// Value is the call's value: fn's, a replayed stored result, or a
	// cached one. It is the zero value when Err is set, unless a layer
	// returned a value with its error (idempotency's ErrNotRecorded).
	Value T
	// Err is the call's error; nil on success.
	Err error
	// FromCache reports that a failed call was answered from the fallback
	// cache (Err is then nil), or that fn's value is made of one that a
	// call made inside fn got from a cache (that call marked this one's
	// Report).
	FromCache bool
	// Replayed reports that Value is a stored result of an earlier call
	// with the same idempotency key; fn did not run.
	Replayed bool
	// Rejected reports that a layer refused to run the call (an open
	// circuit, too many half-open probes). A fallback may still have
	// answered it: check FromCache.
	Rejected bool
	// RolledBack reports that compensations ran because an attempt
	// failed, also when a later attempt then succeeded.
	RolledBack bool
	// Attempts is how many times fn ran: 0 when the call was replayed or
	// rejected, more than 1 when retry ran it again.
	Attempts int
	// Duration is how long the call took, all layers included.
	Duration time.Duration
}

// Success reports whether the call returned without error (its value may
// come from the cache or a replay).
func (r Result[T]) Success() bool { return r.Err == nil }
