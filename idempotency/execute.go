package idempotency

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/sat"
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
//   - A failed result write (Complete, or Release after fn failed) is
//     retried with backoff while the claim's lease holds, before the
//     caller gets ErrNotRecorded (or ErrStore). The retries of Complete
//     go on after ctx ends; those of Release stop when it ends.
//   - If fn panics, or a callback of the Manager does (IsPermanent,
//     OnEvent, the store's codec), the claim is released, waiters get
//     ErrPanicked and the panic propagates to the caller; the key is free
//     for the next call.
//   - Calls with the same key but different fingerprints do not share a
//     flight: each is judged by the store against the fingerprint it
//     holds, so a legitimate retry is never refused because a call with
//     another payload was waiting for the store at the same time.
//   - If fn's value was served by a fallback cache inside it (fn, or a
//     layer it calls, marked bulwark.ReportFrom(ctx) FromCache), the value
//     is not the operation's result: nothing is recorded, the claim is
//     released so that the next call runs fn, waiters in this process
//     start over, and the caller gets the value with Replayed false. A
//     cached value is never replayed as the result of an operation.
//   - If a layer inside gave up on fn while it still runs (the breaker's
//     AbandonOnTimeout records it with bulwark.Report.Abandon), the caller
//     gets its answer (the timeout, or a fallback's cached value) at once,
//     but the claim is kept: a goroutine renews its lease, duplicates in
//     this process wait and others get ErrInProgress, until the abandoned
//     fn returns; its late value is then recorded (and shared with the
//     waiters), and a late error releases the claim (the waiters start
//     over) unless CacheErrors stores it. This comes before the fallback
//     rule above. The goroutine ends once fn has ended and its result is
//     written; it is recorded in ctx's Report in turn with Abandon, with
//     a wait that returns fn's late outcome.
//
// A replay marks bulwark.ReportFrom(ctx) as replayed and emits
// idempotency:replayed; a conflict emits idempotency:conflict. Events are
// emitted after the call's result was published to its duplicates, so an
// OnEvent listener may call Execute, even with the same key: the nested
// call is answered as any duplicate would be (with the same replay or
// error), never blocked by the call whose event it handles. (A listener
// that does so for every event of a key recurses without end: guard it.)
//
// fn runs with a context derived from ctx that carries its flight: a call
// made with it (from inside fn) for the same key and fingerprint on the
// same Manager would wait for itself, and gets an error wrapping
// [ErrReentrant] and [ErrInvalid] instead.
//
// An empty key, a nil Manager, fn or ctx is an error wrapping
// [ErrInvalid], and nothing is claimed; to run fn without idempotency,
// call it directly (as [Middleware] does for calls without a key).
// Execute is safe for concurrent use.
func Execute[T any](ctx context.Context, m *Manager, key, fingerprint string, fn bulwark.Func[T]) Result[T] {
	switch {
	case m == nil:
		return Result[T]{Err: errNilManager}
	case key == "":
		return Result[T]{Err: errEmptyKey}
	case fn == nil:
		return Result[T]{Err: errNilFunc}
	case ctx == nil:
		return Result[T]{Err: errNilContext}
	}
	// With the in-memory store, a completed key is answered without
	// claiming or touching the table of flights.
	if m.mem != nil {
		if rec, ok := m.mem.completed(key); ok {
			r, kind := replayRecord[T](key, fingerprint, &rec)
			m.announce(ctx, kind, key, r.Err)
			return r
		}
	}
	for {
		f, done, leader := m.join(key, fingerprint)
		if leader {
			return lead(ctx, m, key, fingerprint, f, fn)
		}
		if r, ok := wait[T](ctx, m, key, f, done); ok {
			return r
		}
		// The leader's own context ended its call: start over, unless
		// this caller's has ended too.
		if ctx.Err() != nil {
			return Result[T]{Err: context.Cause(ctx)}
		}
	}
}

// replayRecord answers a call with a completed record, and says which
// event announces the answer.
func replayRecord[T any](key, fingerprint string, rec *Record) (Result[T], bulwark.EventKind) {
	if rec.Fingerprint != fingerprint {
		return conflictResult[T](key, ErrKeyReuse), bulwark.IdempotencyConflict
	}
	if rec.Err != nil { // a stored error: no value to decode
		return Result[T]{Err: rec.Err, Replayed: true}, bulwark.IdempotencyReplayed
	}
	v, err := valueOf[T](rec)
	if err != nil {
		return Result[T]{Err: fmt.Errorf("%w (key %q)", err, key)}, ""
	}
	return Result[T]{Value: v, Err: rec.Err, Replayed: true}, bulwark.IdempotencyReplayed
}

func conflictResult[T any](key string, sentinel error) Result[T] {
	return Result[T]{Err: fmt.Errorf("%w: key %q", sentinel, key)}
}

// announce marks a replay in the call's Report and emits the event of
// kind ("" for none). It is called once the call's result was published
// to its duplicates, so that a listener may call into the Manager.
func (m *Manager) announce(ctx context.Context, kind bulwark.EventKind, key string, err error) {
	switch kind {
	case bulwark.IdempotencyReplayed:
		bulwark.ReportFrom(ctx).SetReplayed()
		m.emit(ctx, kind, key, err)
	case bulwark.IdempotencyConflict:
		m.emit(ctx, kind, key, err)
	}
}

// wait handles a duplicate of a call in flight in this process, with the
// same key and fingerprint, whose landing closes done. ok is false if the
// caller must start over.
func wait[T any](ctx context.Context, m *Manager, key string, f *flight, done <-chan struct{}) (r Result[T], ok bool) {
	if f.within(ctx) {
		return Result[T]{Err: fmt.Errorf("%w: %w: key %q", ErrInvalid, ErrReentrant, key)}, true
	}
	if m.policy == DuplicateReject {
		r := conflictResult[T](key, ErrInProgress)
		m.announce(ctx, bulwark.IdempotencyConflict, key, r.Err)
		return r, true
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
		m.announce(ctx, bulwark.IdempotencyConflict, key, f.err)
		return Result[T]{Err: f.err}, true
	}
	var v T
	if f.val != nil || f.err == nil { // a failure shares its error, and no value
		var err error
		if v, err = valueOf[T](&Record{Value: f.val}); err != nil {
			return Result[T]{Err: fmt.Errorf("%w (key %q)", err, key)}, true
		}
	}
	m.announce(ctx, bulwark.IdempotencyReplayed, key, f.err)
	return Result[T]{Value: v, Err: f.err, Replayed: true}, true
}

// lead claims key in the store and, if the claim succeeds, runs fn and
// records its result. It lands f in every case, panics included, before
// announcing the result.
func lead[T any](ctx context.Context, m *Manager, key, fingerprint string, f *flight, fn bulwark.Func[T]) Result[T] {
	storeCtx := ctx
	if ctx.Done() != nil { // a context that cannot be cancelled needs no wrapper
		storeCtx = context.WithoutCancel(ctx)
	}
	defer func() {
		if f.outlived || f.landed {
			return
		}
		// fn panicked or called runtime.Goexit (or so did the store, its
		// codec, IsPermanent or a listener): free the key and the
		// waiters, and let the panic go on. A release failure cannot be
		// reported here; the claim then lapses with its lease. The flight
		// lands even if the release panics too.
		defer m.land(f, nil, ErrPanicked, panicked)
		if f.held {
			_ = m.release(ctx, storeCtx, f)
		}
		f.settled()
	}()
	start := m.now()
	rec, claimed, err := m.store.Claim(ctx, key, f.owner, fingerprint, m.lease)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: claim %q: %w", ErrStore, key, err)
		m.land(f, nil, err, refused)
		return Result[T]{Err: err}
	case claimed:
		f.held = true
		f.leaseEnd.Store(sat.AddNanos(start, m.lease))
		f.runKey = GenerationKey(key, rec.Generation)
		return run(ctx, storeCtx, m, key, f, fn)
	case rec.Fingerprint != fingerprint:
		r := conflictResult[T](key, ErrKeyReuse)
		m.land(f, nil, r.Err, conflict)
		m.announce(ctx, bulwark.IdempotencyConflict, key, r.Err)
		return r
	case rec.State == Completed:
		r, kind := replayRecord[T](key, fingerprint, &rec)
		val := rec.Value
		if rec.Decode != nil {
			val = r.Value
		}
		if r.Replayed {
			m.land(f, val, r.Err, replayed)
		} else {
			m.land(f, nil, r.Err, refused)
		}
		m.announce(ctx, kind, key, r.Err)
		return r
	default: // in progress elsewhere
		r := conflictResult[T](key, ErrInProgress)
		m.land(f, nil, r.Err, conflict)
		m.announce(ctx, bulwark.IdempotencyConflict, key, r.Err)
		return r
	}
}

// run runs fn under the flight's claim and records the result, with store
// calls on storeCtx. fn gets the flight as its context: ctx, marked so
// that a re-entrant call finds it.
func run[T any](ctx, storeCtx context.Context, m *Manager, key string, f *flight, fn bulwark.Func[T]) Result[T] {
	// The Report tells whether a fallback layer inside answered the call
	// from its cache; without one, attach one to find out.
	report := bulwark.ReportFrom(ctx)
	if report == nil {
		ctx, report = bulwark.WithReport(ctx)
	}
	cachedBefore := report.FromCache()
	abandonedBefore := report.Abandoned()
	f.Context = ctx
	f.claimed.Store(true)
	m.armRenewal()
	v, err := fn(f)
	// The lease is still renewed while the result is written: a write
	// that waits (for a connection, for a slow store) must not find the
	// claim gone.

	if err != nil || report.FromCache() {
		// A layer inside that gave up on the operation while it still
		// runs (a timeout with the breaker's AbandonOnTimeout) takes
		// precedence over a fallback's answer: the operation may yet
		// take effect, so the claim is kept until it ends.
		if wait := report.TakeAbandoned(abandonedBefore); wait != nil {
			return outlive(ctx, storeCtx, m, key, f, v, err, wait)
		}
	}

	if err == nil && !cachedBefore && report.FromCache() {
		return answeredFromCache(ctx, storeCtx, m, key, f, v)
	}

	if err == nil {
		val := any(v)
		if serr := m.complete(storeCtx, f, Outcome{Value: val}); serr != nil {
			err = fmt.Errorf("%w: key %q: %w", ErrNotRecorded, key, serr)
		}
		f.settled()
		m.land(f, val, err, executed)
		return Result[T]{Value: v, Err: err}
	}

	if m.cacheErrors && m.isPermanent(err) {
		if serr := m.complete(storeCtx, f, Outcome{Err: err}); serr != nil {
			err = errors.Join(err, fmt.Errorf("%w: key %q: %w", ErrNotRecorded, key, serr))
		}
		f.settled()
		m.land(f, nil, err, executed)
		return Result[T]{Value: v, Err: err}
	}

	if serr := m.release(ctx, storeCtx, f); serr != nil && !errors.Is(serr, ErrLeaseLost) {
		// The claim stays until its lease runs out: say so.
		err = errors.Join(err, fmt.Errorf("%w: release %q: %w", ErrStore, key, serr))
	}
	f.settled()
	o := executed
	if ctx.Err() != nil {
		// The failure is likely this caller's own cancellation, which
		// says nothing about the operation: let the waiters run it.
		o = abandoned
	}
	m.land(f, nil, err, o)
	return Result[T]{Value: v, Err: err}
}

// answeredFromCache settles a call that a fallback layer inside answered
// with a cached value: the operation did not run (or failed), so nothing
// is recorded for the key. The claim is released, so that the next call
// with the key runs the operation, and the waiters in this process start
// over, each judged on its own. The caller gets the value; if the release
// fails, also an error wrapping ErrStore, since the key stays blocked
// until the lease runs out.
func answeredFromCache[T any](ctx, storeCtx context.Context, m *Manager, key string, f *flight, v T) Result[T] {
	var err error
	if serr := m.release(ctx, storeCtx, f); serr != nil && !errors.Is(serr, ErrLeaseLost) {
		err = fmt.Errorf("%w: release %q after a fallback answered: %w", ErrStore, key, serr)
	}
	f.settled()
	m.land(f, nil, nil, abandoned)
	return Result[T]{Value: v, Err: err}
}

// outlive settles a call that a layer inside abandoned while the
// operation still runs: the caller gets v and err (a timeout, or a
// fallback's answer) at once, and a goroutine keeps the claim, its lease
// renewed and the flight's waiters waiting, until wait returns the
// operation's outcome. It then records it as run does: a value is
// completed and shared with the waiters; an error CacheErrors keeps is
// completed; any other error releases the claim and the waiters start
// over. The goroutine ends when the operation has ended and its outcome is
// written (the writes retried while the lease holds, as for any call);
// a panic in it (the store, its codec, IsPermanent) releases the claim,
// frees the waiters and crashes the program, as a panic in any goroutine
// does. The caller's Report records the goroutine with
// bulwark.Report.Abandon in turn, for the layers above: its wait returns
// the operation's late value and error once they are recorded.
func outlive[T any](ctx, storeCtx context.Context, m *Manager, key string, f *flight, v T, err error, wait func() (any, error)) Result[T] {
	done := make(chan struct{})
	var lateVal any
	lateErr := ErrPanicked // unless settleLate returns
	f.outlived = true      // the leader no longer lands f: the goroutine does
	go func() {
		defer close(done)
		landed := false
		defer func() {
			if !landed {
				defer m.land(f, nil, ErrPanicked, panicked)
				_ = m.store.Release(storeCtx, f.key, f.owner)
				f.claimed.Store(false)
			}
		}()
		val, err := wait()
		if _, ok := val.(T); err == nil && !ok && val != nil {
			err = fmt.Errorf("idempotency: the abandoned operation of key %q returned a %T, not a %s", key, val, reflect.TypeFor[T]())
		}
		lateVal, lateErr = val, err
		landed = settleLate(storeCtx, m, key, f, val, err)
	}()
	bulwark.ReportFrom(ctx).Abandon(func() (any, error) {
		<-done
		return lateVal, lateErr
	})
	return Result[T]{Value: v, Err: err}
}

// settleLate records the outcome of an abandoned operation, val and err,
// for f's claim; see outlive, which checked that val is of the
// operation's type. It reports true once f landed.
func settleLate(storeCtx context.Context, m *Manager, key string, f *flight, val any, err error) bool {
	switch {
	case err == nil:
		if serr := m.complete(storeCtx, f, Outcome{Value: val}); serr != nil {
			err = fmt.Errorf("%w: key %q: %w", ErrNotRecorded, key, serr)
		}
		f.claimed.Store(false)
		m.land(f, val, err, executed)
	case m.cacheErrors && m.isPermanent(err):
		if serr := m.complete(storeCtx, f, Outcome{Err: err}); serr != nil {
			err = errors.Join(err, fmt.Errorf("%w: key %q: %w", ErrNotRecorded, key, serr))
		}
		f.claimed.Store(false)
		m.land(f, nil, err, executed)
	default:
		// Nobody waits for this outcome but the duplicates, which start
		// over: the release is retried while the lease holds.
		_ = m.release(storeCtx, storeCtx, f)
		f.claimed.Store(false)
		m.land(f, nil, err, abandoned)
	}
	return true
}
