package ratelimit

import (
	"context"
	"fmt"

	"github.com/bulwark-go/bulwark"
)

// Do runs fn once the call may go: it waits as [Limiter.Wait] does, then
// runs fn with ctx. A refused call returns Wait's error without running
// fn. A panic in fn continues unchanged (the limiter holds nothing to
// release).
//
// Do returns an error wrapping [ErrInvalid] without running anything when
// l, ctx or fn is nil. It is safe for concurrent use.
func Do[T any](ctx context.Context, l *Limiter, fn bulwark.Func[T]) (T, error) {
	if fn == nil {
		var zero T
		return zero, fmt.Errorf("%w Do fn: nil", ErrInvalid)
	}
	if err := l.Wait(ctx); err != nil {
		var zero T
		return zero, err
	}
	return fn(ctx)
}

// Middleware returns a middleware that runs every call of the wrapped
// function through l, exactly as [Do] does. Applied to a nil function, or
// made with a nil l, it returns a function whose every call returns an
// error wrapping [ErrInvalid] without running anything. The functions it
// builds are safe for concurrent use.
func Middleware[T any](l *Limiter) bulwark.Middleware[T] {
	return func(next bulwark.Func[T]) bulwark.Func[T] {
		var err error
		switch {
		case l == nil:
			err = fmt.Errorf("%w Middleware limiter: nil", ErrInvalid)
		case next == nil:
			err = fmt.Errorf("%w Middleware next: nil (ratelimit %q)", ErrInvalid, l.name)
		}
		if err != nil {
			return func(context.Context) (T, error) {
				var zero T
				return zero, err
			}
		}
		return func(ctx context.Context) (T, error) { return Do(ctx, l, next) }
	}
}
