package bulwark

import (
	"context"
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
	attempts atomic.Int64
	flags    atomic.Uint32
}

const (
	flagFromCache uint32 = 1 << iota
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

// SetAttempts records how many times the operation was attempted. The
// retry layer sets it; without a retry layer it stays 0.
func (r *Report) SetAttempts(n int) {
	if r != nil {
		r.attempts.Store(int64(n))
	}
}

// Attempts returns the number recorded by SetAttempts, 0 if none.
func (r *Report) Attempts() int {
	if r == nil {
		return 0
	}
	return int(r.attempts.Load())
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
		r.flags.And(^flagRejected)
	}
}

// SetRolledBack records that compensations ran because the call failed.
func (r *Report) SetRolledBack() { r.set(flagRolledBack) }

// RolledBack reports whether compensations ran for this call.
func (r *Report) RolledBack() bool { return r.has(flagRolledBack) }

func (r *Report) set(f uint32) {
	if r != nil {
		r.flags.Or(f)
	}
}

func (r *Report) has(f uint32) bool {
	return r != nil && r.flags.Load()&f != 0
}
