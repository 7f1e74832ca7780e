package idempotency

import (
	"context"

	"github.com/bulwark-go/bulwark/internal/callvalue"
)

// KeyFunc returns the idempotency key of a call, and optionally its
// payload fingerprint, from the call's context. ok false means the call
// has no key. [AttachedKey] is the KeyFunc that reads what [WithKey] and
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
	switch k.(type) {
	case keyContextKey, attachedKeyKey, callvalue.Marker:
		return c
	}
	return c.Context.Value(k)
}

// attachedKeyKey is the context key under which AttachedKey finds the key
// attached for a call. A flight answers it with itself, and a pipeline
// call's function runs with a context that answers it with nil (see
// internal/callvalue), so that a key attached for a call never keys the
// calls made inside it.
type attachedKeyKey struct{}

func (attachedKeyKey) PerCallKey() {}

// WithKey returns a copy of ctx that carries key as the idempotency key of
// the call made with it, for [Middleware] to read with [AttachedKey]. It is
// shorthand for WithKeyPayload(ctx, key, ""). It costs one allocation.
//
// The key applies to this call only, not to calls made inside it: inside a
// keyed operation, and inside the function of a pipeline call (whatever
// its layers), AttachedKey finds no key, so a nested call is keyed only by
// a key attached for it.
func WithKey(ctx context.Context, key string) context.Context {
	return &keyContext{Context: ctx, key: key}
}

// WithKeyPayload is WithKey with a payload fingerprint (see [DoPayload]).
// It costs one allocation.
func WithKeyPayload(ctx context.Context, key, fingerprint string) context.Context {
	return &keyContext{Context: ctx, key: key, fingerprint: fingerprint}
}

// KeyFrom returns the idempotency key of the call made with ctx, and its
// fingerprint; ok is false if there is none:
//
//   - inside a keyed call's operation (fn of [Execute], [Do], a
//     [Middleware], the pipeline package's keyed calls), the key the
//     operation runs under: [GenerationKey] of the call's key and its
//     current generation. Send it to the remote service as its own
//     idempotency key (an Idempotency-Key header): it is the same for
//     every retry of one execution and for a rerun after a crash, and new
//     once the step was undone and its key forgotten;
//   - otherwise, the key attached by [WithKey] or [WithKeyPayload] (an
//     attached empty key counts as attached: Execute reports it as an
//     error).
//
// The innermost wins: a key attached inside an operation, for a nested
// call, is the one KeyFrom returns from that context, and inside a nested
// keyed call, its own key. A call without a key of its own, made from
// inside a keyed operation, sees that operation's key (it is not keyed by
// it: see [AttachedKey]); give it its own key if it sends one to a remote
// service.
func KeyFrom(ctx context.Context) (key, fingerprint string, ok bool) {
	switch c := ctx.Value(keyContextKey{}).(type) {
	case *keyContext:
		return c.key, c.fingerprint, true
	case *flight:
		if c.runKey != "" {
			return c.runKey, c.fingerprint, true
		}
	}
	return "", "", false
}

// AttachedKey returns the key and fingerprint attached to ctx by [WithKey]
// or [WithKeyPayload] for the call about to be made with it, and ok false
// if there is none. Unlike [KeyFrom], it never returns the key of an
// operation that is running with ctx (nor a key attached outside that
// operation, nor one attached for a pipeline call whose function is
// running with ctx): a call made from inside a keyed operation or a
// pipeline call is not keyed unless a key is attached for it. It is the
// default KeyFunc of [Middleware].
func AttachedKey(ctx context.Context) (key, fingerprint string, ok bool) {
	c, ok := ctx.Value(attachedKeyKey{}).(*keyContext)
	if !ok {
		return "", "", false
	}
	return c.key, c.fingerprint, true
}
