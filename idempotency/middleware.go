package idempotency

import (
	"context"

	"github.com/bulwark-go/bulwark"
)

// Middleware returns a middleware that runs each call through [Execute]
// with the key and fingerprint keyFunc finds in the call's context. A call
// for which keyFunc reports no key runs next directly, without
// idempotency. A nil keyFunc means [KeyFrom], so callers attach keys with
// [WithKey]. Whether a result was replayed shows in the call's
// bulwark.Report. The returned middleware is safe for concurrent use.
func Middleware[T any](m *Manager, keyFunc KeyFunc) bulwark.Middleware[T] {
	if keyFunc == nil {
		keyFunc = KeyFrom
	}
	return func(next bulwark.Func[T]) bulwark.Func[T] {
		return func(ctx context.Context) (T, error) {
			key, fingerprint, ok := keyFunc(ctx)
			if !ok {
				return next(ctx)
			}
			r := Execute(ctx, m, key, fingerprint, next)
			return r.Value, r.Err
		}
	}
}
