// Package rollback undoes the partial effects of a failed call:
// compensations, saga style.
//
// Inside a protected call, code registers an undo action with [OnRollback]
// as it completes each step (a page created, a card added, a charge made).
// If the call fails or panics, the registered compensations run in reverse
// order of registration; if it succeeds, they are discarded. A protected
// call is opened by [Do], by a [Middleware] (the innermost layer of a
// bulwark stack, so that each retried attempt is its own scope), or by
// [Begin] for call sites that cannot pass a function. For a fixed sequence
// of steps with typed state shared between them, use a [Saga].
//
// Compensations run on context.WithoutCancel of the call's context, each
// with its own timeout (30s by default), so a caller that gave up still gets
// its undo. Each compensation is retried with exponential backoff (3
// attempts by default) unless it returns a [Permanent] error or panics. All
// compensations run even if one fails (unless Config.StopOnFailure is
// set), and failures come back as an [*Error] that names each failed
// compensation and keeps the call's own error in its chain. A panic in a
// compensation is recorded as that compensation's failure; the others
// still run, and then the panic continues to the caller.
//
// A scope holds at most Config.MaxCompensations compensations (100000 by
// default), and nothing of it outlives the call.
//
// Closures registered with OnRollback live in memory: they are not
// durable across a process crash. A durable compensation is a handler
// registered by name in a [Registry] ([Register]) and used through its
// typed [Compensation]; with a [Journal] in the Config it is journaled,
// and [Recover] in another process runs it if this one dies. See
// docs/rollback.md ("Durability") for what is and is not guaranteed.
package rollback

import (
	"context"
	"fmt"

	"github.com/bulwark-go/bulwark"
)

// Do runs fn in a new rollback scope and returns its result.
//
// fn receives a context carrying the scope; code under it registers
// compensations with [OnRollback]. Then:
//   - fn succeeds: the compensations are discarded, or handed to the
//     enclosing scope when ctx already carries one (so a later failure of
//     the outer call also undoes this work), and Do returns fn's result.
//   - fn returns an error: the compensations run in reverse registration
//     order, and Do returns fn's value with fn's error unchanged if every
//     compensation succeeded, or an [*Error] whose Cause is fn's error if
//     any failed.
//   - fn panics (or calls runtime.Goexit): the compensations run, then the
//     panic continues unchanged, with its original stack. Compensation
//     failures, panics of compensations included, are then reported only
//     through Config.OnEvent, since no error is returned.
//
// A compensation that panics counts as a failed compensation (a
// [*PanicError]) and is not retried; the others still run, and then the
// panic continues from Do with its original value (the first one, if
// several compensations or the OnEvent listener panicked). The scope has
// ended by then and holds nothing; no timer or goroutine is left.
//
// Each compensation runs on context.WithoutCancel(ctx), bounded by
// Config.Timeout, and is retried as Config says. It sees ctx's values but
// no rollback scope: OnRollback in a compensation returns [ErrNoScope], and
// a Do called by a compensation opens a top-level scope. When any
// compensation ran, the [bulwark.Report] in ctx is marked rolled back.
//
// Do returns an error wrapping [ErrInvalid] without calling fn when fn is
// nil or opts give an invalid Config. Do is safe for concurrent use; it
// starts no goroutine.
func Do[T any](ctx context.Context, fn bulwark.Func[T], opts ...Option) (T, error) {
	cfg, err := resolve(opts)
	if err == nil && fn == nil {
		err = fmt.Errorf("%w Do fn: nil", ErrInvalid)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return run(ctx, &cfg, fn)
}

// Middleware returns a middleware that runs every call of the wrapped
// function in its own rollback scope, exactly as [Do] does. The options
// are resolved once, when Middleware is called.
//
// In a bulwark stack the rollback middleware sits innermost, inside retry:
// each attempt is then its own scope, and a failed attempt's compensations
// run before the next attempt starts.
//
// If opts give an invalid Config, or the middleware is applied to a nil
// function, every call of the resulting function returns an error wrapping
// [ErrInvalid] without running anything; check a Config up front with
// [Config.Validate]. The returned middleware and the functions it builds
// are safe for concurrent use.
func Middleware[T any](opts ...Option) bulwark.Middleware[T] {
	cfg, err := resolve(opts)
	return func(next bulwark.Func[T]) bulwark.Func[T] {
		err := err
		if err == nil && next == nil {
			err = fmt.Errorf("%w Middleware next: nil", ErrInvalid)
		}
		if err != nil {
			return func(context.Context) (T, error) {
				var zero T
				return zero, err
			}
		}
		return func(ctx context.Context) (T, error) {
			return run(ctx, &cfg, next)
		}
	}
}

// run calls fn in a new scope and ends the scope according to fn's
// outcome. A panic is not recovered: the deferred rollback runs while the
// panic unwinds, so it continues with its original value and stack.
func run[T any](ctx context.Context, cfg *settings, fn bulwark.Func[T]) (v T, err error) {
	c := begin(ctx, cfg)
	s := &c.scope
	returned := false
	defer func() {
		if !returned {
			_ = s.rollback(nil, true) // panic or Goexit in fn
		}
	}()
	v, err = fn(c)
	returned = true
	if err != nil {
		return v, s.Rollback(err)
	}
	if err := s.Commit(); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}
