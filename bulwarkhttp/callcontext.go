package bulwarkhttp

import (
	"context"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/breaker"
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
// layers below the breaker the values of theirs. The breaker's release of
// it at the end of the call is put off while a streamed body handed to
// the caller is open (holder), so that the body lives until the caller
// closes it or reads it to its end, or the deadline passes.
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
	return &rt.call, rt.release
}

// attemptContext returns the context of an attempt's request: the call's
// deadline context if the breaker made one, and otherwise the request's
// own (the layers then have no cancellation of their own).
func (rt *roundTrip) attemptContext() context.Context {
	if rt.callMade {
		return rt.call.deadline
	}
	return rt.Context
}

// release is the cancel function the breaker calls when the call returns:
// it ends the call's context unless a streamed body keeps it alive (the
// last attempt's, which RoundTrip may hand to the caller); the body's end
// then does.
func (rt *roundTrip) release() {
	rt.mu.Lock()
	rt.released = true
	rt.holdLocked(rt.last)
	now := rt.holder == nil || rt.holder.ended
	rt.mu.Unlock()
	if now {
		rt.call.cancel()
	}
}

// holdLocked makes r's streamed body, if any and still open, the one that
// keeps the call's context alive, unless one already does.
func (rt *roundTrip) holdLocked(r *received) {
	if rt.holder == nil && r != nil && r.live != nil && !r.live.ended {
		rt.holder = r.live
	}
}

// bodyEnded is called when a streamed body is closed or read to its end:
// if it kept the call's context alive, and the breaker released it, the
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
