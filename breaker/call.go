package breaker

import (
	"context"
	"errors"
	"time"

	"github.com/bulwark-go/bulwark"
)

// ErrTimeout is wrapped by the error of a call that the breaker's
// RequestTimeout cut off (errors.Is(err, ErrTimeout) holds, and the error
// still unwraps to what the function returned). It is also the cause
// (context.Cause) of the context the function receives once that deadline
// passes.
var ErrTimeout = errors.New("breaker: request timeout")

// timeoutError is the error of a call cut off by RequestTimeout.
type timeoutError struct {
	err   error
	after time.Duration
	name  string // the breaker's
}

func (e *timeoutError) Error() string {
	prefix := "breaker: "
	if e.name != "" {
		prefix = "breaker " + e.name + ": "
	}
	return prefix + "request timeout after " + e.after.String() + ": " + e.err.Error()
}

func (e *timeoutError) Is(target error) bool { return target == ErrTimeout }
func (e *timeoutError) Unwrap() error        { return e.err }

// errPanicked is the Err of the request:failure event of a call whose
// function panicked.
var errPanicked = errors.New("breaker: call panicked")

// ticket is an admitted call: what its completion needs to count it.
type ticket struct {
	w       uint64    // the state word it was admitted under: its generation
	probe   bool      // admitted in HALF_OPEN
	measure bool      // its latency is measured: start is set and the end is timed
	sampled bool      // in the latency sample (sampledAt): measured, and reported to OnSample
	start   time.Time // zero when the clock was not read at admission
	s       *settings // the settings it was admitted under
	st      *stripe   // its counters
}

func (t *ticket) gen() uint64 { return t.w >> genShift }

// admit decides whether a call may run, given w, the state word it read.
// sampled, if not nil, is the stripe of a CLOSED call the fast path picked
// to measure its latency.
//
// The clock is read only when something needs it: the request timeout, a
// measured call (a listener or ratio mode measure every call; otherwise one
// in 64, by the stripe's success count), a rejection a listener must hear
// of, or a decision of the core (HALF_OPEN, or OPEN once the reset timeout
// is due). The sample is picked by the same rule as on the fast path,
// whatever else measures the call, so that OnSample's rate and
// Event.Sampled do not depend on the configuration.
func (b *Breaker) admit(ctx context.Context, t *ticket, w uint64, sampled *stripe) error {
	s := b.set.Load()
	*t = ticket{w: w, s: s, st: sampled}
	if t.st == nil {
		t.st = b.pick()
	}
	t.sampled = sampled != nil || sampledAt(t.st.successes.Load())
	t.measure = t.sampled || s.onEvent != nil || s.ratio > 0
	var now time.Time
	if t.measure || s.requestTimeout > 0 {
		now = time.Now()
	}
	switch State(w & stateMask) {
	case Closed:
		t.start = now
		return nil
	case Open:
		if w&bitDue == 0 && (now.IsZero() || int64(now.Sub(b.epoch)) < b.nextAttempt.Load()) {
			return b.reject(ctx, t, b.errOpen, now)
		}
	}
	if now.IsZero() {
		now = time.Now()
	}
	b.mu.Lock()
	s = b.set.Load()
	probe, tr, err := b.c.allow(s, now)
	n := b.changedLocked(s, tr, now)
	t.w = b.word.Load()
	b.mu.Unlock()
	t.probe, t.start = probe, now
	n.ctx = ctx
	if err != nil {
		b.notify(n)
		return b.reject(ctx, t, err, now)
	}
	if n.tr.changed() {
		b.notifyAdmitted(n, t)
	}
	return nil
}

// notifyAdmitted delivers n, the state change that admitting t made (OPEN
// to HALF_OPEN). If a listener or log handler panics, the call will not
// run: its probe slot is given back (the call counts neither way) before
// the panic goes on.
func (b *Breaker) notifyAdmitted(n notice, t *ticket) {
	delivered := false
	defer func() {
		if !delivered {
			b.ignore(t)
		}
	}()
	b.notify(n)
	delivered = true
}

// rejectFast rejects a call in OPEN, before the reset timer fired, without
// reading the clock: no listener is set, so nothing needs the time.
func (b *Breaker) rejectFast(ctx context.Context) error {
	b.inc(&b.pick().rejections)
	bulwark.ReportFrom(ctx).SetRejected()
	return b.errOpen
}

// reject counts a rejection of the call t with err and reports it. err is
// one of the core's sentinels or the breaker's own rejection; the caller
// gets the breaker's own.
func (b *Breaker) reject(ctx context.Context, t *ticket, err error, now time.Time) error {
	switch err {
	case ErrOpen:
		err = b.errOpen
	case ErrTooManyProbes:
		err = b.errProbes
	}
	b.inc(&t.st.rejections)
	bulwark.ReportFrom(ctx).SetRejected()
	if on := t.s.onEvent; on != nil {
		if now.IsZero() {
			now = time.Now()
		}
		on(bulwark.Event{Kind: bulwark.RequestRejected, Executor: b.name, Time: now, Err: err, Context: ctx})
	}
	return err
}

// callContext returns the context fn runs with: ctx bounded by
// RequestTimeout, or ctx itself when there is no timeout or the caller's
// deadline is earlier (then nothing is allocated). cancel is nil when no
// context was created.
func (b *Breaker) callContext(ctx context.Context, t *ticket) (context.Context, context.CancelFunc) {
	d := t.s.requestTimeout
	if d <= 0 || t.start.IsZero() {
		return ctx, nil
	}
	deadline := t.start.Add(d) // saturates: MaxInt64 never cuts a call off
	if dl, ok := ctx.Deadline(); ok && !dl.After(deadline) {
		return ctx, nil
	}
	if mk, ok := ctx.Value(CallContextKey{}).(CallContextFunc); ok && mk != nil {
		return mk(ctx, deadline, ErrTimeout)
	}
	return context.WithDeadlineCause(ctx, deadline, ErrTimeout)
}

// CallContextKey is the context key under which a caller may offer the
// breaker a [CallContextFunc]: a call whose context answers
// ctx.Value(CallContextKey{}) with a non-nil CallContextFunc gets, when
// RequestTimeout applies, the context that function makes instead of
// context.WithDeadlineCause's. It exists for code that must keep that
// context alive after the call returns (bulwarkhttp hands a streamed
// response body, read on the call's context, to its caller), so that it
// needs no second context and timer of its own.
type CallContextKey struct{}

// CallContextFunc makes the context of a call bounded by RequestTimeout:
// a context derived from ctx (its values and cancellation) that ends, with
// cause, when deadline passes, and the function that releases it. The
// breaker calls cancel once when the call returns (or is abandoned); the
// function may keep the context alive after that, but not past deadline
// or ctx's end. The breaker treats the context as its own: the call timed
// out when it ended while ctx had not. It is called on the caller's
// goroutine and must be safe for concurrent use if the context is shared.
type CallContextFunc func(ctx context.Context, deadline time.Time, cause error) (callCtx context.Context, cancel context.CancelFunc)

// finish counts the outcome of the admitted call t, which ran with callCtx
// (derived from the caller's ctx) and returned err, and reports it. It
// returns the error for the caller: err, wrapped when the breaker's own
// timeout cut the call off.
func (b *Breaker) finish(ctx, callCtx context.Context, t *ticket, err error) error {
	o := success
	if err != nil {
		timedOut := callCtx != ctx && callCtx.Err() != nil && ctx.Err() == nil
		if timedOut {
			b.timeoutN.Add(1)
			if !errors.Is(err, ErrTimeout) {
				err = &timeoutError{err: err, after: t.s.requestTimeout, name: b.name}
			}
		}
		o = b.classify(ctx, callCtx, t, err)
		if o == success && bulwark.IsFinal(err) {
			b.finalN.Add(1)
		}
	}
	var now time.Time
	if t.measure || o == failure {
		now = time.Now()
	}
	var n notice
	switch o {
	case success:
		n = b.succeeded(t, now)
	case failure:
		n = b.failed(t, now)
	case ignored:
		b.ignore(t)
	}
	if o != ignored && t.listened() {
		kind := bulwark.RequestSuccess
		if o == failure {
			kind = bulwark.RequestFailure
		}
		// Each event is built as the listener's argument: an Event is
		// large, and building it once to copy it to each listener cost the
		// listener path about 10 ns. A sampled call with both listeners
		// (one in 64 at most) builds it twice.
		if on := t.s.onEvent; on != nil {
			on(bulwark.Event{Kind: kind, Executor: b.name, Time: now, Err: err, Duration: now.Sub(t.start), Context: ctx, Sampled: t.sampled})
		}
		if on := t.s.onSample; on != nil && t.sampled {
			on(bulwark.Event{Kind: kind, Executor: b.name, Time: now, Err: err, Duration: now.Sub(t.start), Context: ctx, Sampled: true})
		}
	}
	n.ctx = ctx
	b.notify(n)
	return err
}

// classify decides how the call t, which returned the non-nil err, counts:
// see Config.IsFailure. If IsFailure panics, the call counts as a failure
// (as a panic in the function does: the breaker cannot tell that the
// service is healthy), which also frees a probe's slot, and the panic goes
// on. Only calls that returned an error get here, so the deferred guard
// costs the success paths nothing.
func (b *Breaker) classify(ctx, callCtx context.Context, t *ticket, err error) outcome {
	classified := false
	defer func() {
		if !classified {
			b.panicked(t, err)
		}
	}()
	o := classifyError(t.s, ctx, callCtx, err)
	classified = true
	return o
}

// classifyError decides how a call that returned the non-nil err counts;
// see Config.IsFailure.
func classifyError(s *settings, ctx, callCtx context.Context, err error) outcome {
	switch {
	case s.failure(ctx, err):
		return failure
	case callCtx.Err() != nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, bulwark.ErrRejected):
		return ignored
	}
	return success
}

// succeeded counts a success of t that finished at now (zero unless the
// call is measured).
func (b *Breaker) succeeded(t *ticket, now time.Time) notice {
	b.inc(&t.st.successes)
	if t.measure {
		b.measured(t, now)
		t.st.lastSuccess.Store(b.sinceEpoch(now))
		// Ratio mode counts the success in its window, unless the call
		// belongs to an older generation. (A state change between this
		// check and the add could let one stale success into the new
		// window: it adds to the throughput, never to the failures.)
		if win := b.win.Load(); win != nil {
			if w := b.word.Load(); w>>genShift == t.gen() && State(w&stateMask) == Closed {
				win.add(now, false)
			}
		}
	}
	return b.successSlow(t.gen(), t.probe, now)
}

// successSlow finishes counting a success of generation gen when the core
// must see it: a probe, a failure run to clear, or LastSuccess to stamp.
// Otherwise, and for results of an older generation, it does nothing.
func (b *Breaker) successSlow(gen uint64, probe bool, now time.Time) notice {
	if w := b.word.Load(); w>>genShift != gen || (!probe && w&(bitRun|bitStamp) == 0) {
		return notice{}
	}
	if now.IsZero() {
		now = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.set.Load()
	b.lastSuccess = max(b.lastSuccess, b.sinceEpoch(now))
	b.stamp = false
	tr := b.c.record(s, now, gen, probe, success, ratioCounts{})
	return b.changedLocked(s, tr, now)
}

// failed counts a failure of t that finished at now.
func (b *Breaker) failed(t *ticket, now time.Time) notice {
	if t.measure {
		b.measured(t, now)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.set.Load()
	b.failures++
	b.lastFailure = now
	b.successBase = b.counters.successes()
	gen := t.gen()
	var rc ratioCounts
	if win := b.win.Load(); win != nil && gen == b.c.gen && b.c.state == Closed {
		win.add(now, true)
		sc, fc := win.counts(now)
		rc = ratioCounts{failures: fc, total: sc + fc}
	}
	tr := b.c.record(s, now, gen, t.probe, failure, rc)
	b.stamp = true
	return b.changedLocked(s, tr, now)
}

// measured adds the latency of the measured call t, which ended at now.
// Only measured calls count, successes and failures alike, so that the
// sample is not biased towards the outcome that always reads the clock.
func (b *Breaker) measured(t *ticket, now time.Time) {
	t.st.latencySum.Add(int64(now.Sub(t.start)))
	t.st.latencyN.Add(1)
}

// ignore counts a call that counts neither way and frees its probe slot.
func (b *Breaker) ignore(t *ticket) {
	b.ignoredN.Add(1)
	if t.probe {
		b.mu.Lock()
		b.c.record(b.set.Load(), time.Time{}, t.gen(), true, ignored, ratioCounts{})
		b.mu.Unlock()
	}
}

// panicked counts the call t as a failure because its function or
// IsFailure panicked; cause is the Err of its request:failure event
// (errPanicked for a panic in the function, the call's error for a panic
// in IsFailure). The panic itself goes on.
func (b *Breaker) panicked(t *ticket, cause error) {
	now := time.Now()
	n := b.failed(t, now)
	if on := t.s.onEvent; on != nil {
		on(bulwark.Event{Kind: bulwark.RequestFailure, Executor: b.name, Time: now, Err: cause, Duration: now.Sub(t.start), Sampled: t.sampled})
	}
	if on := t.s.onSample; on != nil && t.sampled {
		on(bulwark.Event{Kind: bulwark.RequestFailure, Executor: b.name, Time: now, Err: cause, Duration: now.Sub(t.start), Sampled: true})
	}
	b.notify(n)
}

// listened reports whether a listener wants the request event of t:
// OnEvent, or OnSample if t is in the latency sample. The event is built
// only then.
func (t *ticket) listened() bool {
	return t.s.onEvent != nil || (t.sampled && t.s.onSample != nil)
}
