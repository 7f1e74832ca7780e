// Package breaker is a circuit breaker with a request timeout: when a
// service keeps failing, calls to it fail fast instead of piling up, and
// the breaker probes the service until it recovers.
//
// A [Breaker] moves between three states:
//
//	CLOSED ──FailureThreshold consecutive failures within FailureWindow──▶ OPEN
//	OPEN ──ResetTimeout passed, next call──▶ HALF_OPEN (that call is a probe)
//	HALF_OPEN ──SuccessThreshold successful probes──▶ CLOSED
//	HALF_OPEN ──any failed probe──▶ OPEN (a fresh ResetTimeout)
//
// In CLOSED every call runs. In OPEN every call is rejected with [ErrOpen]
// without running. In HALF_OPEN at most HalfOpenMaxCalls probes run at a
// time and further calls are rejected with [ErrTooManyProbes]. Both
// rejections wrap [bulwark.ErrRejected]. Instead of the consecutive rule, a
// breaker can open on a failure ratio over a sliding window (ratio mode,
// see [Config.FailureRatio]).
//
// Wrap calls with [Do] or [Middleware]; use [Breaker.Allow] where the call
// is not a function. One Breaker serves calls of every result type. A
// [Group] holds one breaker per executor (remote service).
//
// The closed-state success path takes no lock, allocates nothing and, with
// the request timeout disabled and no OnEvent listener, does not read the
// clock except for one call in 64 (the latency sample, which OnSample
// hears of); see docs/breaker.md for the measurements and for tuning
// guidance.
//
// Time and goroutines: the breaker reads time.Now where a decision needs
// it and has no background goroutine. While OPEN it holds one runtime timer
// (time.AfterFunc) whose callback only marks the reset timeout as due, so
// that rejections need not read the clock; the move to HALF_OPEN is made by
// the next call. With AbandonOnTimeout, the function runs in a goroutine
// that may outlive the call. Under testing/synctest, call synctest.Wait
// after advancing the clock to exactly the end of a reset timeout.
package breaker

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/sat"
)

// State is the state of a circuit.
type State uint8

// The states of a circuit.
const (
	// Closed: calls run; failures are counted.
	Closed State = iota
	// Open: calls are rejected with ErrOpen until ResetTimeout has passed.
	Open
	// HalfOpen: a limited number of probe calls run; their results decide
	// whether the circuit closes or opens again.
	HalfOpen
)

// String returns "CLOSED", "OPEN" or "HALF_OPEN".
func (s State) String() string {
	switch s {
	case Closed:
		return "CLOSED"
	case Open:
		return "OPEN"
	case HalfOpen:
		return "HALF_OPEN"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// rejection is the type of the breaker's rejections: its message names
// the breaker, it unwraps to bulwark.ErrRejected, and it matches kind (one
// of the sentinels below) with errors.Is. Each breaker makes its two
// rejections once, when it is created, so that rejecting allocates nothing.
type rejection struct {
	msg  string
	kind error // ErrOpen or ErrTooManyProbes; nil for those sentinels themselves
}

func (e *rejection) Error() string        { return e.msg }
func (e *rejection) Unwrap() error        { return bulwark.ErrRejected }
func (e *rejection) Is(target error) bool { return e.kind != nil && target == e.kind }

var (
	// ErrOpen matches (with errors.Is) the error returned, without running
	// the call, while the circuit is OPEN. The error itself names the
	// breaker ("breaker notion: circuit open"); errors.Is(err,
	// bulwark.ErrRejected) holds for it too.
	ErrOpen error = &rejection{msg: "breaker: circuit open"}

	// ErrTooManyProbes matches (with errors.Is) the error returned, without
	// running the call, while the circuit is HALF_OPEN and HalfOpenMaxCalls
	// probes are already running. The error names the breaker ("breaker
	// notion: too many half-open probes"); errors.Is(err,
	// bulwark.ErrRejected) holds for it too.
	ErrTooManyProbes error = &rejection{msg: "breaker: too many half-open probes"}
)

// rejections returns the breaker named name's two rejection errors: the
// sentinels themselves for an unnamed breaker.
func rejections(name string) (open, probes error) {
	if name == "" {
		return ErrOpen, ErrTooManyProbes
	}
	return &rejection{msg: "breaker " + name + ": circuit open", kind: ErrOpen},
		&rejection{msg: "breaker " + name + ": too many half-open probes", kind: ErrTooManyProbes}
}

// The state word packs what the lock-free paths need into one atomic
// uint64: the generation in the high bits, the state and flags in the low
// byte. It is written only under the mutex (the reset timer's callback
// takes it too), and a call reads it once to choose its path.
const (
	stateMask = 3
	bitDue    = 1 << 2 // OPEN: the reset timer fired; the next call must ask the core
	bitRun    = 1 << 3 // CLOSED: failures since the last success; a success must clear them
	bitStamp  = 1 << 4 // the next success records LastSuccess exactly
	bitTimed  = 1 << 5 // CLOSED calls take the slow path (timeout, listener, ratio mode, abandon)
	bitListen = 1 << 6 // a listener is set: rejections read the clock for their event
	bitRatio  = 1 << 7 // ratio mode: successes read the clock for the window
	genShift  = 8
)

// Breaker is a circuit breaker. Create one with [New]; the zero value is
// not usable. All methods are safe for concurrent use.
type Breaker struct {
	word atomic.Uint64 // see stateMask and the bits above
	_    [cacheLine - 8]byte

	readMostly
	_ [cacheLine - unsafe.Sizeof(readMostly{})%cacheLine]byte

	salt atomic.Uint64 // see stripes
	_    [cacheLine - 8]byte

	nextAttempt atomic.Int64 // OPEN: nanoseconds after epoch; math.MaxInt64 otherwise
	ignoredN    atomic.Int64
	timeoutN    atomic.Int64
	finalN      atomic.Int64 // final answers counted as successes

	mu          sync.Mutex
	c           core
	timer       *time.Timer // OPEN: marks the reset timeout due
	due         bool        // the timer fired for the current OPEN period
	stamp       bool        // see bitStamp
	failures    int64
	opened      int64
	closed      int64
	lastFailure time.Time
	lastSuccess int64  // sinceEpoch of a success recorded under the mutex; 0: none
	successBase int64  // successes counted at the last failure (or Reset)
	seq         uint64 // state changes made: the Seq of the last circuit event
}

// readMostly are the fields the fast paths read, kept on cache lines that
// are written only when the configuration changes (and allowDone once per
// generation), away from the counters and the mutex.
type readMostly struct {
	counters  stripes
	set       atomic.Pointer[settings]
	win       atomic.Pointer[window]  // ratio mode only
	allowDone atomic.Pointer[genDone] // Allow's allocation-free done for the current CLOSED generation
	name      string
	errOpen   error     // ErrOpen naming this breaker
	errProbes error     // ErrTooManyProbes naming this breaker
	epoch     time.Time // creation: the base of the nanosecond times
}

// New returns a breaker named name (the executor it guards; it appears in
// events, logs and statistics) configured by cfg. It returns a
// [*ConfigError] naming the field if cfg is invalid.
func New(name string, cfg Config) (*Breaker, error) {
	s, err := newSettings(cfg)
	if err != nil {
		err.Name = name
		return nil, err
	}
	return newBreaker(name, s), nil
}

func newBreaker(name string, s *settings) *Breaker {
	b := &Breaker{stamp: true}
	b.name, b.epoch, b.counters = name, time.Now(), newStripes()
	b.errOpen, b.errProbes = rejections(name)
	b.set.Store(s)
	b.nextAttempt.Store(math.MaxInt64)
	if s.ratio > 0 {
		b.win.Store(newWindow(b.epoch, s.samplingWindow))
	}
	b.publishLocked(s)
	return b
}

// Name returns the name the breaker was created with.
func (b *Breaker) Name() string { return b.name }

// State returns the current state. A circuit whose reset timeout has
// passed reports OPEN until the next call moves it to HALF_OPEN.
func (b *Breaker) State() State { return State(b.word.Load() & stateMask) }

// IsClosed reports whether the circuit is CLOSED.
func (b *Breaker) IsClosed() bool { return b.State() == Closed }

// IsOpen reports whether the circuit is OPEN.
func (b *Breaker) IsOpen() bool { return b.State() == Open }

// IsHalfOpen reports whether the circuit is HALF_OPEN.
func (b *Breaker) IsHalfOpen() bool { return b.State() == HalfOpen }

// Reset closes the circuit, whatever its state, and leaves the breaker
// deciding exactly as a breaker freshly made with the same Config would
// from now on: it ends a ForceOpen, stops the reset timer, forgets the
// failure run and the consecutive counts, empties the ratio window (a new
// one starts now, its buckets aligned as a new breaker's), gives back every
// probe slot and starts a new generation, so that calls that started
// before Reset are counted in the totals but cannot change the state after
// it. Only the totals of [Breaker.Stats] (calls, successes, failures,
// times opened, ...) and the times of the last success and failure are
// kept. It emits circuit:closed if the state changed.
func (b *Breaker) Reset() {
	s := b.set.Load()
	now := time.Now()
	b.mu.Lock()
	tr := b.c.reset(s, now)
	b.stopTimerLocked()
	b.freshWindowLocked(s, now)
	b.successBase = b.counters.successes()
	b.stamp = true
	n := b.changedLocked(s, tr, now)
	b.mu.Unlock()
	b.notify(n)
}

// ForceOpen opens the circuit and holds it OPEN, rejecting every call,
// until [Breaker.Reset]; the reset timeout does not apply. It emits
// circuit:opened if the state changed.
func (b *Breaker) ForceOpen() {
	s := b.set.Load()
	now := time.Now()
	b.mu.Lock()
	tr := b.c.forceOpen(s, now)
	if !tr.changed() {
		b.stopTimerLocked()
	}
	n := b.changedLocked(s, tr, now)
	b.mu.Unlock()
	b.notify(n)
}

// reconfigure swaps the breaker's settings, keeping its state: see
// Group.Configure.
func (b *Breaker) reconfigure(s *settings) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set.Store(s)
	b.c.reconfigure(s, now)
	switch w := b.win.Load(); {
	case s.ratio == 0:
		b.win.Store(nil)
	case w == nil || w.width != s.samplingWindow/ratioBuckets:
		b.win.Store(newWindow(b.epoch, s.samplingWindow))
	}
	if b.c.state == Open && !b.c.forced {
		b.stopTimerLocked()
		b.armLocked(now)
	}
	b.publishLocked(s)
}

// publishLocked stores the state word for the core's current state.
func (b *Breaker) publishLocked(s *settings) {
	w := b.c.gen<<genShift | uint64(b.c.state)
	if b.c.state == Closed && b.c.consecutive > 0 {
		w |= bitRun
	}
	if b.c.state == Open && b.due {
		w |= bitDue
	}
	if b.stamp {
		w |= bitStamp
	}
	if s.timed() {
		w |= bitTimed
	}
	if s.onEvent != nil {
		w |= bitListen
	}
	if s.ratio > 0 {
		w |= bitRatio
	}
	b.word.Store(w)
}

// changedLocked does what follows a core operation at now that made the
// transition tr (possibly none): statistics, the reset timer, the state
// word. It returns what notify must report once the mutex is released.
func (b *Breaker) changedLocked(s *settings, tr transition, now time.Time) notice {
	var n notice
	if tr.changed() {
		b.seq++
		b.stamp = true
		switch tr.to {
		case Open:
			b.opened++
		case Closed:
			b.closed++
			b.freshWindowLocked(s, now)
		}
		b.stopTimerLocked()
		if tr.to == Open && !b.c.forced {
			b.armLocked(now)
		}
		n = notice{tr: tr, seq: b.seq, at: now, s: s}
		if s.onEvent != nil || s.onSample != nil || s.logger != nil {
			st := b.statsLocked()
			n.stats = &st
		}
	}
	b.publishLocked(s)
	return n
}

// freshWindowLocked gives ratio mode an empty window that starts at now.
// A new window rather than a cleared one, so that its buckets are aligned
// on now as a new breaker's are on its creation, and so that a success of
// an older generation that loaded the old window before the change adds
// to that one.
func (b *Breaker) freshWindowLocked(s *settings, now time.Time) {
	if s.ratio > 0 {
		b.win.Store(newWindow(now, s.samplingWindow))
	}
}

// armLocked starts the timer that marks the reset timeout as due, so that
// calls that do not read the clock notice it.
//
// Both durations come from time.Time.Sub, which saturates: a ResetTimeout
// of math.MaxInt64 stores math.MaxInt64 (never due, as while not OPEN) and
// arms a timer for about 292 years.
func (b *Breaker) armLocked(now time.Time) {
	b.nextAttempt.Store(int64(b.c.nextAttempt.Sub(b.epoch)))
	b.timer = time.AfterFunc(b.c.nextAttempt.Sub(now), b.resetDue)
}

func (b *Breaker) stopTimerLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.due = false
	b.nextAttempt.Store(math.MaxInt64)
}

// resetDue runs on the reset timer: it only sets a flag (under the mutex);
// the transition to HALF_OPEN is made by the next call.
func (b *Breaker) resetDue() {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c.state == Open && !b.c.forced && !now.Before(b.c.nextAttempt) {
		b.due = true
		b.publishLocked(b.set.Load())
	}
}

// Do calls fn through the breaker b and returns its result.
//
// If the circuit rejects the call, fn is not called and Do returns an
// error matching [ErrOpen] or [ErrTooManyProbes] (both wrap
// [bulwark.ErrRejected]; the message names the breaker) and marks the
// call's [bulwark.Report] as rejected. Otherwise fn receives a
// context bounded by RequestTimeout (unless the caller's deadline is
// earlier) and its outcome is counted: a nil error is a success; an error
// is classified by Config.IsFailure. An error caused by the breaker's own
// timeout wraps [ErrTimeout].
//
// Do runs fn on the caller's goroutine and waits for it, whatever
// Config.AbandonOnTimeout says (see there, and [Middleware]); so a
// function passed to Do need not live on the heap, and a call that
// succeeds in the CLOSED state allocates nothing, even with a closure.
//
// A panic in fn counts as a failure and then propagates unchanged; so does
// a panic in Config.IsFailure (the call counts as a failure), and a panic
// in Config.OnEvent or in the Logger's handler propagates after the call
// was counted. In every case the breaker first gives back what the call
// held (its probe slot, its timeout context), so a panicking callback
// cannot wedge the circuit.
//
// A nil ctx, b or fn is an error wrapping [ErrInvalid]: nothing runs,
// nothing is counted.
//
// A caller's context that is already done comes first on every path that
// does admission work (a request timeout, a listener, ratio mode,
// HALF_OPEN, an OPEN circuit whose reset timeout is due): Do returns
// context.Cause(ctx) without running fn, making a transition or taking a
// probe slot, and counts the call in Stats.Ignored. The two
// allocation-free paths do not look at the context, to stay as cheap as
// they are: a CLOSED call with no request timeout, listener or ratio mode
// runs fn, which receives the done context (by default its context error
// counts neither way), and without a listener an OPEN circuit rejects the
// call with ErrOpen until its reset timeout is due. In no case is the
// caller's cancellation counted against the service.
//
// Do is safe for concurrent use.
func Do[T any](ctx context.Context, b *Breaker, fn bulwark.Func[T]) (v T, err error) {
	if b == nil || fn == nil || ctx == nil {
		return v, invalid(ctx, b)
	}
	w := b.word.Load()
	if w&(stateMask|bitTimed) == uint64(Closed) {
		st := b.pick()
		if sampledAt(st.successes.Load()) {
			return doSampled(ctx, b, fn, w, st)
		}
		// The fast path: CLOSED, no clock, no lock, no allocation. After fn
		// returns, the path reads b, w and st back from g, which the
		// deferred check holds anyway, so that they are spilled once.
		g := closedCall{b: b, w: w, st: st}
		defer g.check()
		v, err = fn(ctx)
		g.returned = true
		if err != nil {
			return v, g.b.closedError(ctx, g.w, g.st, err)
		}
		g.b.inc(&g.st.successes)
		if g.w&(bitRun|bitStamp) != 0 || g.b.word.Load() != g.w {
			g.b.closedSuccess(g.w)
		}
		return v, err // err is nil; returning it spares a store
	}
	if w&(stateMask|bitDue|bitListen) == uint64(Open) {
		// rejectFast, written out: the call would cost about as much as
		// the rest of the rejection.
		err = b.errOpen
		b.inc(&b.pick().rejections)
		bulwark.ReportFrom(ctx).SetRejected()
		return v, err
	}
	return doSlow(ctx, b, fn, w, nil, nil)
}

// closedCall is a call on Do's fast path, as its deferred check sees it.
type closedCall struct {
	b        *Breaker
	w        uint64  // the state word the call was admitted under
	st       *stripe // its counters
	returned bool    // fn returned: the call did not panic
}

// check counts the call as a failure if fn panicked. It is deferred by
// Do's fast path: a method on a struct on the stack makes a cheaper defer
// than a closure that captures the same variables.
func (c *closedCall) check() {
	if !c.returned {
		c.b.closedPanic(c.w, c.st, -1)
	}
}

// sampleMask selects the calls that measure their latency when nothing
// else reads the clock: one in 64 per stripe. They are the latency sample
// of Stats.MeanLatency and of Config.OnSample, and every path picks them
// by the same rule (see sampledAt).
const sampleMask = 63

// sampledAt reports whether a call whose stripe has counted n successes
// is in the latency sample.
func sampledAt(n int64) bool { return n&sampleMask == sampleMask }

// doSampled is the fast path's call that measures its latency (see
// sampleMask). Nothing else needs the time of day, so it reads only the
// monotonic clock (time.Since has a shortcut for that), which costs about
// half as much as time.Now. It reports a success to Config.OnSample.
func doSampled[T any](ctx context.Context, b *Breaker, fn bulwark.Func[T], w uint64, st *stripe) (v T, err error) {
	start := time.Since(b.epoch)
	returned := false
	defer func() {
		if !returned {
			b.closedPanic(w, st, start)
		}
	}()
	v, err = fn(ctx)
	returned = true
	if err != nil {
		t := ticket{w: w, s: b.set.Load(), st: st, measure: true, sampled: true, start: b.epoch.Add(start)}
		return v, b.finish(ctx, ctx, &t, err)
	}
	end := time.Since(b.epoch)
	b.inc(&st.successes)
	st.latencySum.Add(int64(end - start))
	st.latencyN.Add(1)
	st.lastSuccess.Store(sat.AddNanos(int64(end), 1)) // as sinceEpoch
	n := b.successSlow(w>>genShift, false, b.epoch.Add(end))
	if on := b.set.Load().onSample; on != nil {
		// No OnEvent here: it would have sent the call down the slow path.
		on(bulwark.Event{Kind: bulwark.RequestSuccess, Executor: b.name, Time: b.epoch.Add(end),
			Duration: end - start, Context: ctx, Sampled: true})
	}
	n.ctx = ctx
	b.notify(n)
	return v, nil
}

// closedSuccess finishes counting a success of the fast path when the state
// word says the core must see it. It is kept out of line so that the fast
// path's frame stays small.
//
//go:noinline
func (b *Breaker) closedSuccess(w uint64) {
	b.notify(b.successSlow(w>>genShift, false, time.Time{}))
}

// closedPanic counts a panic of the fast path. start is the call's start
// (time since the epoch) if it was measured, negative if not.
//
//go:noinline
func (b *Breaker) closedPanic(w uint64, st *stripe, start time.Duration) {
	t := ticket{w: w, s: b.set.Load(), st: st}
	if start >= 0 {
		t.measure, t.sampled, t.start = true, true, b.epoch.Add(start)
	}
	b.panicked(&t, errPanicked)
}

// closedError counts an error of the fast path.
//
//go:noinline
func (b *Breaker) closedError(ctx context.Context, w uint64, st *stripe, err error) error {
	t := ticket{w: w, s: b.set.Load(), st: st}
	return b.finish(ctx, ctx, &t, err)
}

// doSlow serves every call that is not a plain CLOSED success: timed calls,
// probes, rejections that must read the clock, calls with AbandonOnTimeout.
// sampled is the stripe of a CLOSED call picked to measure its latency.
//
// abandon runs the call in a goroutine of its own when AbandonOnTimeout is
// set; it is nil for Do, which always runs fn on the caller's goroutine.
// Only a Middleware, whose function is allocated once when it is built,
// passes one: were fn itself handed to a goroutine here, every function
// passed to Do would have to live on the heap, and each call would cost
// its caller an allocation.
func doSlow[T any](ctx context.Context, b *Breaker, fn bulwark.Func[T], w uint64, sampled *stripe, abandon abandoner[T]) (v T, err error) {
	if ctx.Err() != nil {
		return v, b.gone(ctx)
	}
	var t ticket
	if err := b.admit(ctx, &t, w, sampled); err != nil {
		return v, err
	}
	callCtx, cancel := b.callContext(ctx, &t)
	if t.s.abandon && abandon != nil {
		at := t // only this path puts the ticket on the heap
		return abandon(ctx, callCtx, cancel, b, &at)
	}
	if cancel != nil {
		// Deferred, so that the context is released whatever panics: fn,
		// IsFailure or a listener.
		defer cancel()
	}
	returned := false
	defer func() {
		if !returned {
			b.panicked(&t, errPanicked)
		}
	}()
	v, err = fn(callCtx)
	returned = true
	return v, b.finish(ctx, callCtx, &t, err)
}

// gone counts a call whose caller's context was done before it was
// admitted, and returns the context's cause.
//
//go:noinline
func (b *Breaker) gone(ctx context.Context) error {
	b.ignoredN.Add(1)
	return context.Cause(ctx)
}

// doAbandon runs fn in its own goroutine so that the caller can return as
// soon as callCtx ends (AbandonOnTimeout). A call it abandons is recorded
// with bulwark.Report.Abandon, whose wait returns fn's late outcome.
func doAbandon[T any](ctx, callCtx context.Context, cancel context.CancelFunc, b *Breaker, t *ticket, fn bulwark.Func[T]) (T, error) {
	type result struct {
		v        T
		err      error
		panicked bool
		p        any
	}
	ch := make(chan result, 1)
	var claimed atomic.Bool // set by whichever side finishes the call first
	go func() {
		r := result{panicked: true}
		defer func() {
			if r.panicked {
				r.p = recover()
			}
			won := claimed.CompareAndSwap(false, true)
			ch <- r // the only send; for the caller, or for the Report's wait
			if !won && r.panicked {
				// The caller has gone: nobody can receive the panic.
				// Re-raise it here, as any panic in a goroutine.
				panic(r.p)
			}
		}()
		r.v, r.err = fn(callCtx)
		r.panicked = false
	}()
	if cancel != nil {
		defer cancel() // whatever panics
	}
	take := func(r result) (T, error) {
		if r.panicked {
			b.panicked(t, errPanicked)
			panic(r.p)
		}
		return r.v, b.finish(ctx, callCtx, t, r.err)
	}
	select {
	case r := <-ch:
		return take(r)
	case <-callCtx.Done():
		if !claimed.CompareAndSwap(false, true) {
			return take(<-ch) // fn finished at the same moment
		}
	}
	// fn still runs and may yet take effect: tell the layers above (an
	// idempotency layer keeps its claim until fn returns).
	bulwark.ReportFrom(ctx).Abandon(sync.OnceValues(func() (any, error) {
		if r := <-ch; !r.panicked {
			return r.v, r.err
		}
		return nil, errPanicked
	}))
	err := callCtx.Err()
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	var zero T
	return zero, b.finish(ctx, callCtx, t, err)
}

// abandoner runs a call admitted as t in a goroutine of its own
// (AbandonOnTimeout); see doAbandon.
type abandoner[T any] func(ctx, callCtx context.Context, cancel context.CancelFunc, b *Breaker, t *ticket) (T, error)

// Middleware returns a middleware that runs every call through b as [Do]
// does, and that honours Config.AbandonOnTimeout: when it is set, the
// wrapped function runs in a goroutine of its own and the caller returns
// as soon as the call's context ends. The returned middleware and the
// functions it builds are safe for concurrent use.
//
// A nil b or next is not a panic: the function built returns an error
// wrapping [ErrInvalid] on every call, as it does for a nil context, and
// runs and counts nothing.
func Middleware[T any](b *Breaker) bulwark.Middleware[T] {
	return func(next bulwark.Func[T]) bulwark.Func[T] {
		if b == nil || next == nil {
			err := errNilBreaker
			if b != nil {
				err = errNilFunc
			}
			return func(context.Context) (T, error) {
				var zero T
				return zero, err
			}
		}
		abandon := func(ctx, callCtx context.Context, cancel context.CancelFunc, b *Breaker, t *ticket) (T, error) {
			return doAbandon(ctx, callCtx, cancel, b, t, next)
		}
		return func(ctx context.Context) (T, error) {
			if ctx != nil && b.set.Load().abandon {
				return doSlow(ctx, b, next, b.word.Load(), nil, abandon)
			}
			return Do(ctx, b, next)
		}
	}
}

// genDone is Allow's done function for one CLOSED generation.
type genDone struct {
	gen uint64
	fn  func(error)
}

// Allow is the two-step form of [Do] for call sites that cannot pass a
// function. If the circuit rejects the call, Allow returns [ErrOpen] or
// [ErrTooManyProbes] and a nil done. Otherwise the caller makes the call
// and then must call done exactly once with its error: nil counts as a
// success; an error is classified by Config.IsFailure with
// context.Background() as the caller's context, so by default every error
// counts as a failure except one wrapping context.Canceled, which counts
// neither way (pass it when the caller gave up). RequestTimeout and
// AbandonOnTimeout do not apply: the breaker does not see the call.
//
// In CLOSED, unless a listener is set or in ratio mode, Allow and done
// allocate nothing and do not read the clock (such calls are not part of
// Stats.MeanLatency). Allow is safe for concurrent use; each done belongs
// to one call. Outside that CLOSED case, a done called again does nothing
// (a probe's slot is given back once); in it, each call of done counts.
// A panic in Config.IsFailure or a listener inside done propagates after
// the call was counted (IsFailure's as a failure) and its slot freed.
//
// On a nil *Breaker, Allow returns an error wrapping [ErrInvalid].
func (b *Breaker) Allow() (done func(err error), err error) {
	if b == nil {
		return nil, errNilBreaker
	}
	w := b.word.Load()
	if w&(stateMask|bitListen|bitRatio) == uint64(Closed) {
		gen := w >> genShift
		if d := b.allowDone.Load(); d != nil && d.gen == gen {
			return d.fn, nil
		}
		d := &genDone{gen: gen}
		d.fn = func(err error) { b.doneClosed(gen, err) }
		b.allowDone.Store(d)
		return d.fn, nil
	}
	if w&(stateMask|bitDue|bitListen) == uint64(Open) {
		return nil, b.rejectFast(context.Background())
	}
	a := new(allowCall)
	if err := b.admit(context.Background(), &a.t, w, nil); err != nil {
		return nil, err
	}
	return func(err error) {
		if a.done.Swap(true) {
			return
		}
		bg := context.Background()
		b.finish(bg, bg, &a.t, err)
	}, nil
}

// allowCall is a call Allow admitted outside the allocation-free CLOSED
// case: its ticket, and whether done was called.
type allowCall struct {
	t    ticket
	done atomic.Bool
}

// doneClosed is the done function of a call Allow admitted in the CLOSED
// generation gen without reading the clock.
func (b *Breaker) doneClosed(gen uint64, err error) {
	st := b.pick()
	if err == nil {
		b.inc(&st.successes)
		if w := b.word.Load(); w>>genShift == gen && w&(bitRun|bitStamp) != 0 {
			b.closedSuccess(w)
		}
		return
	}
	b.closedError(context.Background(), gen<<genShift|uint64(Closed), st, err)
}
