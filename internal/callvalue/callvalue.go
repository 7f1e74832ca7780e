// Package callvalue is what the layers share about per-call values: the
// values a caller attaches to a context for the one call it makes with
// it (retry.WithMaxAttempts, cache.WithKey, idempotency.WithKey). Such a
// value applies to that call only, never to the calls made inside it: a
// call's function runs with a context on which the lookups that layers
// make to find them come back empty ([Hide]), so that a nested call is
// not retried, keyed or answered from a cache as the outer call asked for
// itself.
package callvalue

import (
	"context"
	"errors"

	"github.com/bulwark-go/bulwark"
)

// Marker is the context key that every context node holding a per-call
// value answers with a non-nil value, so that one lookup tells whether a
// context carries any.
type Marker struct{}

// Key is implemented by the context keys under which layers look up a
// per-call value for the call they run: a context made by [Hide] answers
// them with nil.
type Key interface {
	PerCallKey()
}

// hidden is a context on which the per-call values of its parent read as
// absent. A per-call value attached below it (for a nested call) is found
// as usual, before the lookup reaches it.
type hidden struct {
	context.Context
}

func (h *hidden) Value(key any) any {
	switch key.(type) {
	case Marker, Key:
		return nil
	}
	return h.Context.Value(key)
}

// CallReport is the context key a pipeline call's context answers with
// the call's *bulwark.Report, also inside the call's function. A layer
// that reports to bulwark.ReportFrom(ctx) (bulwarkhttp's Transport) looks
// it up to tell the Report of its own caller (attached with
// bulwark.WithReport for this one call) from that of an enclosing
// pipeline call whose function is running: that call ran, so only
// FromCache may be passed up to it, never Replayed, Rejected or Attempts.
type CallReport struct{}

// Enclosing reports whether r, the Report found in ctx, is that of a
// pipeline call whose function is running (see CallReport).
func Enclosing(ctx context.Context, r *bulwark.Report) bool {
	encl, _ := ctx.Value(CallReport{}).(*bulwark.Report)
	return r != nil && encl == r
}

// ErrSucceededLate is the late outcome that WithoutValue gives for an
// abandoned call that succeeded: its effect happened, but the caller it
// is handed to has no value for it.
var ErrSucceededLate = errors.New("bulwark: a call abandoned inside the operation succeeded late")

// WithoutValue is wait, the late outcome of a call abandoned while it
// runs (bulwark.Report.Abandon), without its value: for the Report of a
// caller whose function did not return that value (an enclosing pipeline
// call, or the caller of an HTTP request), so that its idempotency layer
// holds its key until the call ends and then releases it, never records
// the inner value as its own. A late error is passed on as it is (nothing
// happened); a late success becomes ErrSucceededLate.
func WithoutValue(wait func() (any, error)) func() (any, error) {
	return func() (any, error) {
		if _, err := wait(); err != nil {
			return nil, err
		}
		return nil, ErrSucceededLate
	}
}

// Hide returns the context a call's function runs with: ctx, without the
// per-call values attached for the call. It returns ctx itself, and
// allocates nothing, when ctx carries none; otherwise it costs one
// allocation. Everything else ctx carries (its deadline, cancellation and
// other values) is kept.
func Hide(ctx context.Context) context.Context {
	if ctx.Value(Marker{}) == nil {
		return ctx
	}
	return &hidden{Context: ctx}
}
