package idempotency

import (
	"context"

	"github.com/bulwark-go/bulwark"
)

// Middleware returns a middleware that runs each call through [Execute]
// with the key and fingerprint keyFunc finds in the call's context. A call
// for which keyFunc reports no key runs next directly, without
// idempotency. A nil keyFunc means [AttachedKey], so callers attach keys with
// [WithKey]. Whether a result was replayed shows in the call's
// bulwark.Report. If keyFunc panics, nothing is claimed and the panic
// reaches the caller.
//
// A nil m, or a nil next given to the middleware, makes every call of the
// resulting function return an error wrapping [ErrInvalid], without
// calling keyFunc or claiming anything; so does a call with a nil
// context. The returned middleware is safe
// for concurrent use.
func Middleware[T any](m *Manager, keyFunc KeyFunc) bulwark.Middleware[T] {
	if keyFunc == nil {
		keyFunc = AttachedKey
	}
	return func(next bulwark.Func[T]) bulwark.Func[T] {
		switch {
		case m == nil:
			return invalid[T](errNilManager)
		case next == nil:
			return invalid[T](errNilFunc)
		}
		return func(ctx context.Context) (T, error) {
			if ctx == nil {
				var zero T
				return zero, errNilContext
			}
			key, fingerprint, ok := keyFunc(ctx)
			if !ok {
				return next(ctx)
			}
			r := Execute(ctx, m, key, fingerprint, next)
			return r.Value, r.Err
		}
	}
}

// invalid returns a function that always fails with err.
func invalid[T any](err error) bulwark.Func[T] {
	return func(context.Context) (T, error) {
		var zero T
		return zero, err
	}
}
