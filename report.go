package bulwark

import (
	"context"
	"math"
	"sync/atomic"
)

// Report is the per-call metadata that layers record as a call passes
// through them: how many attempts ran, whether the value came from a
// fallback cache or an idempotency replay, whether the call was rejected
// and whether a rollback ran. The pipeline package attaches a Report to
// each call with [WithReport] and turns it into its Result.
//
// Every method is safe for concurrent use and may be called on a nil
// *Report: setters then do nothing and getters return zero values, so a
// layer annotates with ReportFrom(ctx).SetReplayed() without checking
// whether anyone is listening.
type Report struct {
	// word holds the flags in its low 32 bits and the attempts in its
	// high 32 bits: with the pointer below, a Report is two words, and
	// WithReport's allocation stays in the 32-byte size class.
	word      atomic.Uint64
	abandoned atomic.Pointer[abandonment] // the newest; see Abandon
}

const (
	flagFromCache uint64 = 1 << iota
	flagReplayed
	flagRejected
	flagRolledBack
)

// ReportKey is the context key under which [ReportFrom] finds a call's
// *Report. [WithReport] is the usual way to attach a Report; ReportKey is
// for code that already allocates its own per-call context type (an
// orchestrator, the pipeline package) and wants to carry a Report inside
// it without a second allocation: such a context answers Value(ReportKey{})
// with its *Report.
type ReportKey struct{}

// reportCtx carries a Report. The Report lives inside the context value, so
// attaching one costs a single allocation.
type reportCtx struct {
	context.Context
	report Report
}

func (c *reportCtx) Value(key any) any {
	if key == (ReportKey{}) {
		return &c.report
	}
	return c.Context.Value(key)
}

// WithReport returns a copy of ctx that carries a new, empty Report, and
// that Report. Layers called with the returned context annotate it; the
// caller reads it when the call returns. Attaching a Report costs one
// allocation.
func WithReport(ctx context.Context) (context.Context, *Report) {
	c := &reportCtx{Context: ctx}
	return c, &c.report
}

// ReportFrom returns the Report carried by ctx, or nil when there is none.
// The nil result is safe to use: its setters do nothing.
func ReportFrom(ctx context.Context) *Report {
	r, _ := ctx.Value(ReportKey{}).(*Report)
	return r
}

// attemptsShift places the attempts in Report.word.
const attemptsShift = 32

// SetAttempts records how many times the operation was attempted. The
// retry layer sets it; without a retry layer it stays 0. A negative n is
// recorded as 0, one above math.MaxUint32 as math.MaxUint32.
func (r *Report) SetAttempts(n int) {
	if r == nil {
		return
	}
	a := uint64(min(max(n, 0), math.MaxUint32)) << attemptsShift
	for {
		w := r.word.Load()
		if r.word.CompareAndSwap(w, w&(1<<attemptsShift-1)|a) {
			return
		}
	}
}

// Attempts returns the number recorded by SetAttempts, 0 if none.
func (r *Report) Attempts() int {
	if r == nil {
		return 0
	}
	return int(r.word.Load() >> attemptsShift)
}

// SetFromCache records that the value was served by a fallback cache.
func (r *Report) SetFromCache() { r.set(flagFromCache) }

// FromCache reports whether the value was served by a fallback cache.
func (r *Report) FromCache() bool { return r.has(flagFromCache) }

// SetReplayed records that the value is a stored result replayed by the
// idempotency layer instead of a new execution.
func (r *Report) SetReplayed() { r.set(flagReplayed) }

// Replayed reports whether the value is a replayed stored result.
func (r *Report) Replayed() bool { return r.has(flagReplayed) }

// SetRejected records that a layer refused the call without running it
// (an error wrapping [ErrRejected]). A fallback may still have answered.
func (r *Report) SetRejected() { r.set(flagRejected) }

// Rejected reports whether a layer refused the call without running it.
func (r *Report) Rejected() bool { return r.has(flagRejected) }

// ClearRejected undoes SetRejected, for a layer that knows the call did
// run after all: retry, when a retry was refused after an attempt that
// ran and failed (the call is then that failure, not a rejection).
func (r *Report) ClearRejected() {
	if r != nil {
		r.word.And(^flagRejected)
	}
}

// SetRolledBack records that compensations ran because the call failed.
func (r *Report) SetRolledBack() { r.set(flagRolledBack) }

// RolledBack reports whether compensations ran for this call.
func (r *Report) RolledBack() bool { return r.has(flagRolledBack) }

func (r *Report) set(f uint64) {
	if r != nil {
		r.word.Or(f)
	}
}

func (r *Report) has(f uint64) bool {
	return r != nil && r.word.Load()&f != 0
}

// abandonment is an operation recorded by Abandon: how to wait for it, and
// the one recorded before it. seq counts the list's nodes, oldest first
// (1, 2, ...), so that a mark taken by Abandoned is a number.
type abandonment struct {
	wait func() (any, error)
	prev *abandonment
	seq  int
}

// Abandon records that a layer returned to its caller while the operation
// it wraps may still run and take effect: the breaker's AbandonOnTimeout
// does so when a call's context ends before the function returns. wait
// blocks until that operation ended and returns its outcome, the value (a
// T of the call's chain, as any) and error the layer below returned; it
// must be safe to call more than once and from any goroutine, and must
// return once the operation ended.
//
// The layers above learn from it that the call's error (a timeout, the
// caller's cancellation), or a fallback's answer to it, does not mean the
// operation ended: the idempotency layer keeps its claim on the key until
// wait returns, so that no duplicate runs the operation meanwhile. Each
// call of Abandon is kept (nested layers, or a retry above an abandoning
// layer, may abandon several); on a nil Report, or a nil wait, it does
// nothing.
func (r *Report) Abandon(wait func() (any, error)) {
	if r == nil || wait == nil {
		return
	}
	n := &abandonment{wait: wait}
	for {
		prev := r.abandoned.Load()
		n.prev, n.seq = prev, 1
		if prev != nil {
			n.seq = prev.seq + 1
		}
		if r.abandoned.CompareAndSwap(prev, n) {
			return
		}
	}
}

// Abandoned returns the number of operations recorded by [Report.Abandon]
// and not yet taken by [Report.TakeAbandoned]: a mark to pass to
// TakeAbandoned later, to take only those recorded after it. 0 on a nil
// Report.
func (r *Report) Abandoned() int {
	if r == nil {
		return 0
	}
	if n := r.abandoned.Load(); n != nil {
		return n.seq
	}
	return 0
}

// TakeAbandoned removes the operations recorded by [Report.Abandon] after
// the mark since (a number returned by [Report.Abandoned]; 0 for all of
// them) and returns a function that waits for all of them to end; nil if
// there are none. The function returns the outcome of the newest one,
// unless it failed and an older one succeeded: then that one's (the
// operation took effect). The caller that takes them answers for them: a
// layer that cannot wait for them itself hands them on with Abandon. It is
// safe for concurrent use; on a nil Report it returns nil.
func (r *Report) TakeAbandoned(since int) func() (any, error) {
	if r == nil {
		return nil
	}
	for {
		head := r.abandoned.Load()
		if head == nil || head.seq <= since {
			return nil
		}
		base := head
		for base != nil && base.seq > since {
			base = base.prev
		}
		if r.abandoned.CompareAndSwap(head, base) {
			return waitAll(head, base)
		}
	}
}

// waitAll waits for the operations from head down to stop (excluded).
func waitAll(head, stop *abandonment) func() (any, error) {
	if head.prev == stop {
		return head.wait
	}
	return func() (v any, err error) {
		succeeded := false
		for n := head; n != stop; n = n.prev {
			nv, nerr := n.wait()
			switch {
			case succeeded:
			case nerr == nil:
				v, err, succeeded = nv, nil, true
			case n == head:
				v, err = nv, nerr
			}
		}
		return v, err
	}
}
