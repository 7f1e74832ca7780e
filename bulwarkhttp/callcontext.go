package bulwarkhttp

import (
	"context"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/internal/callvalue"
)

// The context of a call through the layers, and of its attempts.
//
// The breaker bounds a call by its RequestTimeout with a context that ends
// when the call returns, but a streamed response body is read on its
// attempt's context after the call returned. Deriving each attempt's
// context from the request's, with a context.AfterFunc or a second timer
// for the deadline, costs about as much as the rest of the Transport. So
// the roundTrip offers the breaker a breaker.CallContextFunc
// (makeCallContext) and makes the call's context itself: a deadline
// context derived from the request's own context (deadline), which the
// attempts send their requests with, inside a callContext that gives the
// layers below the breaker the values of theirs. The cancel function the
// breaker gets does nothing: the roundTrip releases the context itself
// when RoundTrip ends (finish, abort), right after the breaker returned,
// and puts that off while a streamed body handed to the caller is open
// (holder), so that the body lives until the caller closes it or reads it
// to its end, or the deadline passes. (A release of its own also spares
// the allocation of a cancel function per request.)
//
// This relies on the layers above the breaker deriving no context that
// they cancel: the breaker's parent context then ends only when the
// request's does, as deadline does. (Idempotency and fallback only add
// values; the breaker's is the only context a layer derives.)

// errRequestTimeout is the cause that ends the call's context when its
// deadline (the breaker's RequestTimeout) passes, while an attempt is
// inside the layers or while the caller reads a streamed body.
var errRequestTimeout = fmt.Errorf("bulwarkhttp: %w: %w", breaker.ErrTimeout, context.DeadlineExceeded)

// callContext is the context the breaker gives the layers below it: the
// values of parent (the layers' context), the deadline, cancellation and
// cause of deadline.
type callContext struct {
	deadline context.Context // derived from the request's context
	parent   context.Context
	cancel   context.CancelFunc // deadline's
}

func (c *callContext) Deadline() (time.Time, bool) { return c.deadline.Deadline() }
func (c *callContext) Done() <-chan struct{}       { return c.deadline.Done() }
func (c *callContext) Err() error                  { return c.deadline.Err() }
func (c *callContext) Value(key any) any           { return c.parent.Value(key) }

// AfterFunc makes contexts derived from c (with context.WithCancel and the
// like) follow deadline without a goroutine of their own.
func (c *callContext) AfterFunc(f func()) func() bool {
	return context.AfterFunc(c.deadline, f)
}

// makeCallContext is the breaker.CallContextFunc a roundTrip offers: the
// first call (the breaker's, before any attempt) gets the roundTrip's
// callContext; any other (a breaker used by Base inside an attempt) gets
// context.WithDeadlineCause's.
func makeCallContext(ctx context.Context, deadline time.Time, cause error) (context.Context, context.CancelFunc) {
	rt, _ := ctx.Value(roundTripKey{}).(*roundTrip)
	if rt == nil || !rt.made.CompareAndSwap(false, true) {
		return context.WithDeadlineCause(ctx, deadline, cause)
	}
	d, cancel := context.WithDeadlineCause(rt.Context, deadline, errRequestTimeout)
	rt.call = callContext{deadline: d, parent: ctx, cancel: cancel}
	rt.callMade = true
	return &rt.call, keepCallContext
}

// keepCallContext is the cancel function the breaker gets with the
// roundTrip's call context: the roundTrip releases the context itself
// (releaseLocked), once RoundTrip ends.
func keepCallContext() {}

// attemptContext returns the context of an attempt's request: the call's
// deadline context if the breaker made one, and otherwise the request's
// own (the layers then have no cancellation of their own), without the
// per-call values attached for the request (see internal/callvalue): they
// applied to this call, so a Base that is itself a Transport, or makes a
// pipeline call, must not retry or key its own call by them. Hiding them
// costs an allocation, and only when there are some.
func (rt *roundTrip) attemptContext() context.Context {
	ctx := rt.Context
	if rt.callMade {
		ctx = rt.call.deadline
	}
	if rt.perCall {
		return callvalue.Hide(ctx)
	}
	return ctx
}

// releaseLocked marks the call's context released, when RoundTrip ends,
// and reports whether it must end now: the roundTrip made it and no
// streamed body keeps it alive (the last attempt's, which RoundTrip may
// hand to the caller: it must be held first); otherwise the body's end
// ends it. The caller ends it (rt.call.cancel) after unlocking mu.
func (rt *roundTrip) releaseLocked() bool {
	rt.released = true
	return rt.callMade && (rt.holder == nil || rt.holder.ended)
}

// holdLocked makes r's streamed body, if any and still open, the one that
// keeps the call's context alive, unless one already does.
func (rt *roundTrip) holdLocked(r *received) {
	if rt.holder == nil && r != nil && r.live != nil && !r.live.ended {
		rt.holder = r.live
	}
}

// bodyEnded is called when a streamed body is closed or read to its end:
// if it kept the call's context alive, and RoundTrip has ended, the
// context ends.
func (rt *roundTrip) bodyEnded(b *liveBody) {
	rt.mu.Lock()
	b.ended = true
	now := rt.released && rt.holder == b
	rt.mu.Unlock()
	if now {
		rt.call.cancel()
	}
}
