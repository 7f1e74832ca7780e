package cache

import (
	"context"

	"github.com/bulwark-go/bulwark/internal/callvalue"
)

// keyCtxKey is the context key under which WithKey stores a key of type K;
// each K has its own.
type keyCtxKey[K comparable] struct{}

// keyCtx carries a per-call cache key. Value returns the keyCtx itself, not
// the key, so that reading the key back boxes nothing.
type keyCtx[K comparable] struct {
	context.Context
	key K
	// unkeyed is the context a call made with this very context runs its
	// function with, made with it so that it costs no allocation of its
	// own.
	unkeyed unkeyed
}

func (c *keyCtx[K]) inner() *unkeyed { return &c.unkeyed }

func (c *keyCtx[K]) Value(k any) any {
	switch k.(type) {
	case keyCtxKey[K], attachedKeyKey[K], anyAttachedKey, callvalue.Marker:
		return c
	}
	return c.Context.Value(k)
}

// attachedKeyKey is the context key under which AttachedKey finds a key
// of type K. Unlike keyCtxKey, it is hidden from the function of the call
// the key was attached for (see internal/callvalue).
type attachedKeyKey[K comparable] struct{}

func (attachedKeyKey[K]) PerCallKey()     {}
func (attachedKeyKey[K]) attachedKeyKey() {}

// anyAttachedKey is answered by the keyCtx of every key type, so that one
// lookup tells whether a call carries a key of any type.
type anyAttachedKey struct{}

func (anyAttachedKey) PerCallKey()     {}
func (anyAttachedKey) attachedKeyKey() {}

// unkeyed is the context a fallback runs the call's function with when
// the call carries a key attached with WithKey: AttachedKey finds no key
// on it, so that a call made inside is not stored or served under the
// outer call's key. KeyFrom still finds it.
type unkeyed struct {
	context.Context
}

func (c *unkeyed) Value(k any) any {
	if _, ok := k.(interface{ attachedKeyKey() }); ok {
		return nil
	}
	return c.Context.Value(k)
}

// withoutKey returns ctx on which AttachedKey finds no key (one
// allocation, none when ctx is the context WithKey returned), or ctx itself
// when it carries none.
func withoutKey(ctx context.Context) context.Context {
	v := ctx.Value(anyAttachedKey{})
	if v == nil {
		return ctx
	}
	if v == any(ctx) { // the context WithKey returned
		return v.(interface{ inner() *unkeyed }).inner()
	}
	return &unkeyed{Context: ctx}
}

// WithKey returns a copy of ctx that carries key as the cache key of this
// call, for a fallback built with [FallbackFunc] and [AttachedKey]. It
// costs one allocation, like context.WithValue. A later WithKey of the
// same key type overrides an earlier one. Like every function of this
// file, it is safe for concurrent use.
//
// The key applies to this call only, not to calls made inside it: a
// fallback (and a pipeline call, whatever its layers) runs the call's
// function with a context on which AttachedKey finds no key (one more
// allocation), so that a nested call that names no key of its own is
// never stored or answered under the outer call's key. [KeyFrom] still
// finds it there, for a function that uses its call's key as data.
func WithKey[K comparable](ctx context.Context, key K) context.Context {
	c := &keyCtx[K]{Context: ctx, key: key}
	c.unkeyed.Context = c
	return c
}

// KeyFrom returns the key of type K that [WithKey] attached to ctx, and
// whether there is one: the key of the call made with ctx, and inside its
// function, still that call's key (the innermost WithKey wins), so that
// the function can use it as data. Use [AttachedKey], not KeyFrom, as
// the key function of a fallback: with KeyFrom, a call made inside a
// keyed call would be stored and served under the outer call's key. It
// does not allocate, and is safe for concurrent use.
func KeyFrom[K comparable](ctx context.Context) (K, bool) {
	if c, ok := ctx.Value(keyCtxKey[K]{}).(*keyCtx[K]); ok {
		return c.key, true
	}
	var zero K
	return zero, false
}

// AttachedKey returns the key of type K that [WithKey] attached to ctx
// for the call about to be made with it, and whether there is one. Unlike
// [KeyFrom], it finds no key inside the function of a call made through a
// fallback or a pipeline call with ctx: a key applies to the call it was
// attached for, not to the calls made inside it. It has the signature of
// [FallbackFunc]'s key function, so cache.AttachedKey[string] can be
// passed as it is: a call without a key of its own then gets no fallback.
// It does not allocate, and is safe for concurrent use.
func AttachedKey[K comparable](ctx context.Context) (K, bool) {
	if c, ok := ctx.Value(attachedKeyKey[K]{}).(*keyCtx[K]); ok {
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
// payments. Unlike WithKey, it is inherited on purpose: the calls made
// inside such a call skip their fallbacks too, since the outer call's
// result is made of theirs. It costs one allocation, like
// context.WithValue, and is safe for concurrent use.
func SkipFallback(ctx context.Context) context.Context {
	return context.WithValue(ctx, skipKey{}, true)
}

// skipped reports whether ctx was made by SkipFallback.
func skipped(ctx context.Context) bool {
	return ctx.Value(skipKey{}) != nil
}
