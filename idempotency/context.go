package idempotency

import "context"

// KeyFunc returns the idempotency key of a call, and optionally its
// payload fingerprint, from the call's context. ok false means the call
// has no key. [KeyFrom] is the KeyFunc that reads what [WithKey] and
// [WithKeyPayload] attached.
type KeyFunc func(ctx context.Context) (key, fingerprint string, ok bool)

type keyContextKey struct{}

// keyContext carries a call's key. The key lives inside the context
// value, so attaching one costs a single allocation.
type keyContext struct {
	context.Context
	key, fingerprint string
}

func (c *keyContext) Value(k any) any {
	if k == (keyContextKey{}) {
		return c
	}
	return c.Context.Value(k)
}

// WithKey returns a copy of ctx that carries key as the idempotency key of
// the calls made with it, for [Middleware] to read with [KeyFrom]. It is
// shorthand for WithKeyPayload(ctx, key, ""). It costs one allocation.
func WithKey(ctx context.Context, key string) context.Context {
	return &keyContext{Context: ctx, key: key}
}

// WithKeyPayload is WithKey with a payload fingerprint (see [DoPayload]).
// It costs one allocation.
func WithKeyPayload(ctx context.Context, key, fingerprint string) context.Context {
	return &keyContext{Context: ctx, key: key, fingerprint: fingerprint}
}

// KeyFrom returns the key and fingerprint attached to ctx by WithKey or
// WithKeyPayload; ok is false if there is none. An attached empty key
// counts as attached (ok true): Execute then reports it as an error.
func KeyFrom(ctx context.Context) (key, fingerprint string, ok bool) {
	c, ok := ctx.Value(keyContextKey{}).(*keyContext)
	if !ok {
		return "", "", false
	}
	return c.key, c.fingerprint, true
}
