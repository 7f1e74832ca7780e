package pipeline

import (
	"context"
	"fmt"
	"math"

	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/retry"
)

// CallOption sets a per-call knob of Execute, Do or Middleware: the
// idempotency key, the operation's name and fallback key, skipping the
// fallback, or the number of attempts. Options are plain values: passing
// them costs no allocation.
type CallOption struct {
	kind  optionKind
	s     string
	n     int
	parts []any
	fn    any // Undo's func(context.Context, T) error
}

type optionKind uint8

const (
	optIdempotencyKey optionKind = iota + 1
	optIdempotencyKeyParts
	optFingerprint
	optOperation
	optFallbackKey
	optSkipFallback
	optUndo
	optAttempts
)

// IdempotencyKey makes the call run at most once for key on its executor:
// a duplicate gets the stored result (Result.Replayed) instead of running
// fn again. The key is used as given; build it with idempotency.Key and
// namespace it yourself if executors share a Store, or use
// [IdempotencyKeyParts]. Without the executor's Idempotency layer the
// option has no effect.
//
// Like every call option, it applies to this call only, not to calls made
// inside it; so does a key attached with idempotency.WithKey, which fn
// does not see as attached (idempotency.AttachedKey finds none).
func IdempotencyKey(key string) CallOption {
	return CallOption{kind: optIdempotencyKey, s: key}
}

// IdempotencyKeyParts sets the call's idempotency key to
// idempotency.Key(executor, parts...): the SHA-256 of a canonical encoding
// of the parts, namespaced by the executor's name. A part that cannot be
// encoded (a func, a channel, a cycle) fails the call with an error
// wrapping idempotency.ErrInvalidKeyPart, without running anything.
func IdempotencyKeyParts(parts ...any) CallOption {
	return CallOption{kind: optIdempotencyKeyParts, parts: parts}
}

// Fingerprint attaches a fingerprint of the call's payload to its
// idempotency key: a later call with the same key and another fingerprint
// fails with idempotency.ErrKeyReuse and runs nothing. Without it the
// fingerprint is "".
func Fingerprint(fingerprint string) CallOption {
	return CallOption{kind: optFingerprint, s: fingerprint}
}

// Operation names what the call does ("get-page", "list-cards"). Each
// executor has one fallback cache, and the operation's name is the key
// the call's result is stored and served under, unless [FallbackKey] says
// otherwise. A call that names no key (no Operation, no FallbackKey, no
// cache.WithKey on its context) passes the fallback untouched: nothing is
// stored, nothing is served, so one call can never be answered with
// another call's data. The name and a cache.WithKey key apply to this
// call only, not to calls made inside it: fn runs with a context on which
// cache.AttachedKey finds no key. Give calls that return different data
// different operations. An empty name is an error wrapping [ErrInvalid].
func Operation(name string) CallOption {
	return CallOption{kind: optOperation, s: name}
}

// FallbackKey sets the key under which the call's result is stored in
// the executor's fallback cache and served from it, overriding
// [Operation] (e.g. "get-page:" + id, for a value per page). An empty key
// is an error wrapping [ErrInvalid].
func FallbackKey(key string) CallOption {
	return CallOption{kind: optFallbackKey, s: key}
}

// SkipFallback turns the fallback off for this call: its result is not
// stored, and its failure is not answered from the cache. Use it for calls
// that must never see an old result, such as payments. It is the call
// option form of cache.SkipFallback, which is honoured as well.
func SkipFallback() CallOption {
	return CallOption{kind: optSkipFallback}
}

// NoRetry makes the call run at most once: the executor's retry layer
// does not retry it, whatever its Config says. Use it for a request that
// is not safe to repeat (a POST without an idempotency key). It is
// Attempts(1), and like it applies to this call only, not to calls made
// inside it.
func NoRetry() CallOption {
	return CallOption{kind: optAttempts, n: 1}
}

// Attempts makes the executor's retry layer run the call at most n times,
// the first included, instead of its Config.MaxAttempts (see
// retry.WithMaxAttempts, which carries it). Without a Retry layer the
// call runs once whatever n is. It applies to this call only, not to
// calls made inside it: fn runs with a context without it (nor a
// retry.WithMaxAttempts of the caller's), so a nested call is retried as
// its own executor says. An n below 1 is an error wrapping [ErrInvalid],
// and nothing runs. A call with either option costs one more allocation
// (two with a Retry layer: the number, and fn's context without it).
func Attempts(n int) CallOption {
	return CallOption{kind: optAttempts, n: n}
}

// callOptions are the options of one call, resolved. They live in the
// call's context, so they are kept small.
type callOptions struct {
	key            string
	fallbackKey    string     // FallbackKey, else Operation
	extra          *callExtra // the rarer options; nil without them
	hasKey         bool
	hasOperation   bool // set by Operation: fallbackKey holds its name unless hasFallbackKey
	hasFallbackKey bool // set by FallbackKey: Operation no longer applies
	skipFallback   bool
	attempts       int32 // NoRetry, Attempts; 0: the executor's (fits the bools' padding)
}

// callExtra holds the options few calls set, so that the call context of
// the others stays small (one allocation of 112 bytes).
type callExtra struct {
	fingerprint string
	operation   string // Operation's name, when FallbackKey is set too
	undoName    string
	undo        any // Undo's func(context.Context, T) error; nil without one
}

// more returns o's extra options, made on first need.
func (o *callOptions) more() *callExtra {
	if o.extra == nil {
		o.extra = new(callExtra)
	}
	return o.extra
}

// fingerprint is the Fingerprint option's.
func (o *callOptions) fingerprint() string {
	if o.extra == nil {
		return ""
	}
	return o.extra.fingerprint
}

// operation is the Operation option's name, "" without one.
func (o *callOptions) operation() string {
	switch {
	case !o.hasOperation:
		return ""
	case !o.hasFallbackKey:
		return o.fallbackKey
	case o.extra != nil:
		return o.extra.operation
	}
	return ""
}

// undo returns the Undo option's name and function (nil without one).
func (o *callOptions) undo() (string, any) {
	if o.extra == nil {
		return "", nil
	}
	return o.extra.undoName, o.extra.undo
}

// idempotencyKey is the call's idempotency key: the option's, or else a
// key attached to ctx with idempotency.WithKey.
func (o *callOptions) idempotencyKey(ctx context.Context) (key, fingerprint string, ok bool) {
	if o.hasKey {
		return o.key, o.fingerprint(), true
	}
	return idempotency.AttachedKey(ctx)
}

// fallbackKeyOf is the call's fallback key: FallbackKey, or a key attached
// to ctx with cache.WithKey for this call (cache.AttachedKey: never one
// attached for a call this one is made inside), or else the operation's
// name. A call with
// SkipFallback has none, and neither has a call that names no key: the
// fallback then leaves it alone.
func (o *callOptions) fallbackKeyOf(ctx context.Context) (string, bool) {
	switch {
	case o.skipFallback:
		return "", false
	case o.hasFallbackKey:
		return o.fallbackKey, true
	}
	if k, ok := cache.AttachedKey[string](ctx); ok {
		return k, true
	}
	return o.fallbackKey, o.hasOperation
}

// withAttempts returns ctx carrying the call's number of attempts, if an
// option set one, for the retry layer.
func (o *callOptions) withAttempts(ctx context.Context) context.Context {
	if o.attempts > 0 {
		return retry.WithMaxAttempts(ctx, int(o.attempts))
	}
	return ctx
}

// apply resolves opts for a call to executor.
func (o *callOptions) apply(executor string, opts []CallOption) error {
	for _, opt := range opts {
		switch opt.kind {
		case optIdempotencyKey:
			o.key, o.hasKey = opt.s, true
		case optIdempotencyKeyParts:
			key, err := idempotency.Key(append([]any{executor}, opt.parts...)...)
			if err != nil {
				return fmt.Errorf("%w: executor %q: IdempotencyKeyParts: %w", ErrInvalid, executor, err)
			}
			o.key, o.hasKey = key, true
		case optFingerprint:
			o.more().fingerprint = opt.s
		case optOperation:
			if opt.s == "" {
				return fmt.Errorf("%w: executor %q: Operation: empty name", ErrInvalid, executor)
			}
			o.hasOperation = true
			if !o.hasFallbackKey {
				o.fallbackKey = opt.s
			} else {
				o.more().operation = opt.s
			}
		case optFallbackKey:
			if opt.s == "" {
				return fmt.Errorf("%w: executor %q: FallbackKey: empty key", ErrInvalid, executor)
			}
			if o.hasOperation && !o.hasFallbackKey {
				o.more().operation = o.fallbackKey
			}
			o.fallbackKey, o.hasFallbackKey = opt.s, true
		case optSkipFallback:
			o.skipFallback = true
		case optUndo:
			switch {
			case opt.s == "":
				return fmt.Errorf("%w: executor %q: Undo: empty name", ErrInvalid, executor)
			case opt.fn == nil:
				return fmt.Errorf("%w: executor %q: Undo %q: nil function", ErrInvalid, executor, opt.s)
			}
			o.more().undoName, o.more().undo = opt.s, opt.fn
		case optAttempts:
			if opt.n < 1 || opt.n > math.MaxInt32 {
				return fmt.Errorf("%w: executor %q: Attempts: %d, must be at least 1 (1 turns retries off) and at most %d", ErrInvalid, executor, opt.n, math.MaxInt32)
			}
			o.attempts = int32(opt.n)
		default:
			return fmt.Errorf("%w: executor %q: zero CallOption (use the option functions)", ErrInvalid, executor)
		}
	}
	return nil
}
