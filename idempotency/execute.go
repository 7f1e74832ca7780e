package idempotency

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark"
)

// Result is the outcome of [Execute].
type Result[T any] struct {
	// Value is the operation's value: the one fn returned, or the stored
	// or shared one when Replayed.
	Value T
	// Err is the call's error: fn's error, a stored permanent error when
	// Replayed, or the Manager's own (ErrInProgress, ErrKeyReuse,
	// ErrStore, ...). Value and Err can both be set: a value whose
	// recording failed comes with an error wrapping ErrNotRecorded.
	Err error
	// Replayed reports that fn did not run for this call: Value and Err
	// come from another call's execution, stored earlier or shared while
	// it ran in this process.
	Replayed bool
}

// Do runs fn at most once for key and returns its result; duplicates get
// the same result back. It is shorthand for Execute(ctx, m, key, "", fn);
// use Execute to learn whether the result was replayed, or look at the
// bulwark.Report of ctx.
func Do[T any](ctx context.Context, m *Manager, key string, fn bulwark.Func[T]) (T, error) {
	r := Execute(ctx, m, key, "", fn)
	return r.Value, r.Err
}

// DoPayload is Do with a payload fingerprint: a call whose key was
// claimed with another fingerprint gets ErrKeyReuse, and fn does not run.
// It is shorthand for Execute(ctx, m, key, fingerprint, fn). Compute a
// fingerprint with [Key] over the request's payload.
func DoPayload[T any](ctx context.Context, m *Manager, key, fingerprint string, fn bulwark.Func[T]) (T, error) {
	r := Execute(ctx, m, key, fingerprint, fn)
	return r.Value, r.Err
}

// Execute runs fn at most once for key, as follows.
//
//   - The first call claims the key in the store (in progress, with a
//     lease, extended while fn runs), runs fn, and stores its value for
//     the Manager's TTL.
//   - A duplicate that arrives after completion gets the stored result,
//     with Replayed set, without running fn. So does a duplicate that
//     arrives while the first call runs in this process: it waits for it
//     (or gets ErrInProgress under DuplicateReject). A duplicate whose
//     key is held by another process gets ErrInProgress until the holder
//     completes or its lease runs out; fn never runs twice while a lease
//     holds.
//   - If fn fails, the claim is released so that a retry runs fn again,
//     unless CacheErrors is set and the error is permanent: then it is
//     stored and replayed like a value.
//   - A key claimed with a different fingerprint gets ErrKeyReuse; fn
//     does not run. The fingerprint "" is a fingerprint like any other.
//   - If the store fails at the claim, fn does not run and the error
//     wraps ErrStore. If it fails to record fn's value, the caller gets
//     the value and an error wrapping ErrNotRecorded.
//   - Results are recorded on context.WithoutCancel(ctx): a caller that
//     gives up after fn returned still has its result recorded. fn itself
//     gets ctx. A waiter that gives up returns its context's cause and
//     does not disturb the running call. If the running call's own
//     context ends its call without a stored result, its waiters start
//     over, and one of them runs fn.
//   - If fn panics, the claim is released, waiters get ErrPanicked and
//     the panic propagates to the caller.
//   - If fn's value was served by a fallback cache inside it (fn, or a
//     layer it calls, marked bulwark.ReportFrom(ctx) FromCache), the value
//     is not the operation's result: nothing is recorded, the claim is
//     released so that the next call runs fn, waiters in this process
//     start over, and the caller gets the value with Replayed false. A
//     cached value is never replayed as the result of an operation.
//
// A replay marks bulwark.ReportFrom(ctx) as replayed and emits
// idempotency:replayed; a conflict emits idempotency:conflict. An empty
// key, a nil Manager or a nil fn is an error; to run fn without
// idempotency, call it directly (as [Middleware] does for calls without
// a key). Execute is safe for concurrent use.
func Execute[T any](ctx context.Context, m *Manager, key, fingerprint string, fn bulwark.Func[T]) Result[T] {
	switch {
	case m == nil:
		return Result[T]{Err: errNilManager}
	case key == "":
		return Result[T]{Err: errEmptyKey}
	case fn == nil:
		return Result[T]{Err: errNilFunc}
	}
	// With the in-memory store, a completed key is answered without
	// claiming or touching the table of flights.
	if m.mem != nil {
		if rec, ok := m.mem.completed(key); ok {
			return replayRecord[T](ctx, m, key, fingerprint, &rec)
		}
	}
	for {
		f, done, leader := m.join(key, fingerprint)
		if leader {
			return lead(ctx, m, key, fingerprint, f, fn)
		}
		if r, ok := wait[T](ctx, m, key, fingerprint, f, done); ok {
			return r
		}
		// The leader's own context ended its call: start over, unless
		// this caller's has ended too.
		if ctx.Err() != nil {
			return Result[T]{Err: context.Cause(ctx)}
		}
	}
}

// replayRecord answers a call with a completed record.
func replayRecord[T any](ctx context.Context, m *Manager, key, fingerprint string, rec *Record) Result[T] {
	if rec.Fingerprint != fingerprint {
		return conflictResult[T](m, key, ErrKeyReuse)
	}
	v, err := valueOf[T](rec)
	if err != nil {
		return Result[T]{Err: fmt.Errorf("%w (key %q)", err, key)}
	}
	return replayResult(ctx, m, key, v, rec.Err)
}

func replayResult[T any](ctx context.Context, m *Manager, key string, v T, err error) Result[T] {
	bulwark.ReportFrom(ctx).SetReplayed()
	m.emit(bulwark.IdempotencyReplayed, key, err)
	return Result[T]{Value: v, Err: err, Replayed: true}
}

func conflictResult[T any](m *Manager, key string, sentinel error) Result[T] {
	err := fmt.Errorf("%w: key %q", sentinel, key)
	m.emit(bulwark.IdempotencyConflict, key, err)
	return Result[T]{Err: err}
}

// wait handles a duplicate of a call in flight in this process, whose
// landing closes done. ok is false if the caller must start over.
func wait[T any](ctx context.Context, m *Manager, key, fingerprint string, f *flight, done <-chan struct{}) (r Result[T], ok bool) {
	if f.fingerprint != fingerprint {
		return conflictResult[T](m, key, ErrKeyReuse), true
	}
	if m.policy == DuplicateReject {
		return conflictResult[T](m, key, ErrInProgress), true
	}
	select {
	case <-done:
	case <-ctx.Done():
		return Result[T]{Err: context.Cause(ctx)}, true
	}
	switch f.outcome {
	case abandoned:
		return r, false
	case panicked:
		return Result[T]{Err: fmt.Errorf("%w: key %q", ErrPanicked, key)}, true
	case refused:
		return Result[T]{Err: f.err}, true
	case conflict:
		m.emit(bulwark.IdempotencyConflict, key, f.err)
		return Result[T]{Err: f.err}, true
	}
	v, err := valueOf[T](&Record{Value: f.val})
	if err != nil {
		return Result[T]{Err: fmt.Errorf("%w (key %q)", err, key)}, true
	}
	return replayResult(ctx, m, key, v, f.err), true
}

// lead claims key in the store and, if the claim succeeds, runs fn and
// records its result. It lands f in every case, panics included.
func lead[T any](ctx context.Context, m *Manager, key, fingerprint string, f *flight, fn bulwark.Func[T]) Result[T] {
	storeCtx := ctx
	if ctx.Done() != nil { // a context that cannot be cancelled needs no wrapper
		storeCtx = context.WithoutCancel(ctx)
	}
	defer func() {
		if f.landed {
			return
		}
		// fn panicked or called runtime.Goexit (or so did the store or
		// IsPermanent): free the key and the waiters, and let the panic go
		// on. A release failure cannot be reported here; the claim then
		// lapses with its lease.
		if f.claimed.Swap(false) {
			_ = m.store.Release(storeCtx, key, f.owner)
		}
		m.land(key, f, nil, ErrPanicked, panicked)
	}()
	rec, claimed, err := m.store.Claim(ctx, key, f.owner, fingerprint, m.lease)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: claim %q: %w", ErrStore, key, err)
		m.land(key, f, nil, err, refused)
		return Result[T]{Err: err}
	case claimed:
		return run(ctx, storeCtx, m, key, f, fn)
	case rec.Fingerprint != fingerprint:
		r := conflictResult[T](m, key, ErrKeyReuse)
		m.land(key, f, nil, r.Err, conflict)
		return r
	case rec.State == Completed:
		r := replayRecord[T](ctx, m, key, fingerprint, &rec)
		val := rec.Value
		if rec.Decode != nil {
			val = r.Value
		}
		if r.Replayed {
			m.land(key, f, val, r.Err, replayed)
		} else {
			m.land(key, f, nil, r.Err, refused)
		}
		return r
	default: // in progress elsewhere
		r := conflictResult[T](m, key, ErrInProgress)
		m.land(key, f, nil, r.Err, conflict)
		return r
	}
}

// run runs fn under the flight's claim and records the result, with store
// calls on storeCtx.
func run[T any](ctx, storeCtx context.Context, m *Manager, key string, f *flight, fn bulwark.Func[T]) Result[T] {
	owner := f.owner
	// The Report tells whether a fallback layer inside answered the call
	// from its cache; without one, attach one to find out.
	report := bulwark.ReportFrom(ctx)
	if report == nil {
		ctx, report = bulwark.WithReport(ctx)
	}
	cachedBefore := report.FromCache()
	f.claimed.Store(true)
	m.armRenewal()
	v, err := fn(ctx)
	f.claimed.Store(false) // no more extensions: the claim is settled below

	if err == nil && !cachedBefore && report.FromCache() {
		return answeredFromCache(storeCtx, m, key, f, v)
	}

	if err == nil {
		val := any(v)
		if serr := m.store.Complete(storeCtx, key, owner, Outcome{Value: val}, m.ttl); serr != nil {
			err = fmt.Errorf("%w: key %q: %w", ErrNotRecorded, key, serr)
		}
		m.land(key, f, val, err, executed)
		return Result[T]{Value: v, Err: err}
	}

	if m.cacheErrors && m.isPermanent(err) {
		if serr := m.store.Complete(storeCtx, key, owner, Outcome{Err: err}, m.ttl); serr != nil {
			err = errors.Join(err, fmt.Errorf("%w: key %q: %w", ErrNotRecorded, key, serr))
		}
		m.land(key, f, nil, err, executed)
		return Result[T]{Value: v, Err: err}
	}

	if serr := m.store.Release(storeCtx, key, owner); serr != nil && !errors.Is(serr, ErrLeaseLost) {
		// The claim stays until its lease runs out: say so.
		err = errors.Join(err, fmt.Errorf("%w: release %q: %w", ErrStore, key, serr))
	}
	o := executed
	if ctx.Err() != nil {
		// The failure is likely this caller's own cancellation, which
		// says nothing about the operation: let the waiters run it.
		o = abandoned
	}
	m.land(key, f, nil, err, o)
	return Result[T]{Value: v, Err: err}
}

// answeredFromCache settles a call that a fallback layer inside answered
// with a cached value: the operation did not run (or failed), so nothing
// is recorded for the key. The claim is released, so that the next call
// with the key runs the operation, and the waiters in this process start
// over, each judged on its own. The caller gets the value; if the release
// fails, also an error wrapping ErrStore, since the key stays blocked
// until the lease runs out.
func answeredFromCache[T any](storeCtx context.Context, m *Manager, key string, f *flight, v T) Result[T] {
	var err error
	if serr := m.store.Release(storeCtx, key, f.owner); serr != nil && !errors.Is(serr, ErrLeaseLost) {
		err = fmt.Errorf("%w: release %q after a fallback answered: %w", ErrStore, key, serr)
	}
	m.land(key, f, nil, nil, abandoned)
	return Result[T]{Value: v, Err: err}
}
