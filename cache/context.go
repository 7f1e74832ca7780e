package cache

import "context"

// keyCtxKey is the context key under which WithKey stores a key of type K;
// each K has its own.
type keyCtxKey[K comparable] struct{}

// keyCtx carries a per-call cache key. Value returns the keyCtx itself, not
// the key, so that reading the key back boxes nothing.
type keyCtx[K comparable] struct {
	context.Context
	key K
}

func (c *keyCtx[K]) Value(k any) any {
	if _, ok := k.(keyCtxKey[K]); ok {
		return c
	}
	return c.Context.Value(k)
}

// WithKey returns a copy of ctx that carries key as the cache key of this
// call, for a fallback built with [FallbackFunc] and [KeyFrom]. It costs
// one allocation, like context.WithValue. A later WithKey of the same key
// type overrides an earlier one. Like every function of this file, it is
// safe for concurrent use.
func WithKey[K comparable](ctx context.Context, key K) context.Context {
	return &keyCtx[K]{Context: ctx, key: key}
}

// KeyFrom returns the key of type K that [WithKey] attached to ctx, and
// whether there is one. It has the signature of [FallbackFunc]'s key
// function, so cache.KeyFrom[string] can be passed as it is: a call without
// a key then gets no fallback. It does not allocate, and is safe for
// concurrent use.
func KeyFrom[K comparable](ctx context.Context) (K, bool) {
	if c, ok := ctx.Value(keyCtxKey[K]{}).(*keyCtx[K]); ok {
		return c.key, true
	}
	var zero K
	return zero, false
}

type skipKey struct{}

// SkipFallback returns a copy of ctx with which every fallback of this
// package (the middlewares and DoFallback) lets the call through
// untouched: its result is not stored, and its failure is not answered from
// the cache. Use it for calls that must never see an old result, such as
// payments. It costs one allocation, like context.WithValue, and is safe
// for concurrent use.
func SkipFallback(ctx context.Context) context.Context {
	return context.WithValue(ctx, skipKey{}, true)
}

// skipped reports whether ctx was made by SkipFallback.
func skipped(ctx context.Context) bool {
	return ctx.Value(skipKey{}) != nil
}
