package bulkhead

import (
	"context"
	"fmt"

	"github.com/bulwark-go/bulwark"
)

// Do runs fn in a slot of b: it acquires a slot as [Bulkhead.Acquire]
// does, runs fn with ctx, and gives the slot back when fn returns or
// panics (the panic then continues unchanged). A refused call returns
// Acquire's error without running fn.
//
// Do returns an error wrapping [ErrInvalid] without running anything when
// b, ctx or fn is nil. It is safe for concurrent use.
func Do[T any](ctx context.Context, b *Bulkhead, fn bulwark.Func[T]) (T, error) {
	if fn == nil {
		var zero T
		return zero, fmt.Errorf("%w Do fn: nil", ErrInvalid)
	}
	release, err := b.Acquire(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	defer release()
	return fn(ctx)
}

// Middleware returns a middleware that runs every call of the wrapped
// function through b, exactly as [Do] does. Applied to a nil function, or
// made with a nil b, it returns a function whose every call returns an
// error wrapping [ErrInvalid] without running anything. The functions it
// builds are safe for concurrent use.
func Middleware[T any](b *Bulkhead) bulwark.Middleware[T] {
	return func(next bulwark.Func[T]) bulwark.Func[T] {
		var err error
		switch {
		case b == nil:
			err = fmt.Errorf("%w Middleware bulkhead: nil", ErrInvalid)
		case next == nil:
			err = fmt.Errorf("%w Middleware next: nil (bulkhead %q)", ErrInvalid, b.name)
		}
		if err != nil {
			return func(context.Context) (T, error) {
				var zero T
				return zero, err
			}
		}
		return func(ctx context.Context) (T, error) { return Do(ctx, b, next) }
	}
}
