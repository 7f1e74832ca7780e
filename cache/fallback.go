package cache

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/bulwark-go/bulwark"
)

// DefaultMaxAge is the MaxAge of a [FallbackConfig] that leaves it zero.
const DefaultMaxAge = 5 * time.Minute

// ErrTypeMismatch is wrapped by the error every call through a fallback
// returns when the middleware's result type T cannot be stored in the
// cache's value type V (V must be T, or an interface type that T
// implements). The message names both types.
var ErrTypeMismatch = errors.New("cache: result type does not fit the cache's value type")

// FallbackConfig configures [Fallback], [FallbackFunc] and [DoFallback].
// The zero value serves a cached value younger than 5 minutes on any error
// but a final answer or the caller's cancellation ([DefaultWhen]), without
// events. The fallback copies the config when it is built, so
// changing it afterwards changes nothing.
type FallbackConfig struct {
	// When reports whether a failed call may be answered from the cache.
	// nil means [DefaultWhen]: every error except the service's final
	// answer (a 404 must reach the caller, not last week's copy of the
	// page) and the caller's own cancellation. [OnlyRejections] limits the
	// fallback to calls a layer refused without running them, such as
	// those rejected by an open circuit. To extend the default, call
	// DefaultWhen from your own function.
	When func(err error) bool

	// MaxAge is the oldest a cached value may be to be served: a value
	// stored MaxAge ago or earlier is not. It applies on top of the
	// cache's own time to live, so the stricter of the two wins. 0 means
	// 5 minutes (DefaultMaxAge); a negative value is an error;
	// math.MaxInt64 means no limit beyond the cache's TTL.
	MaxAge time.Duration

	// OnEvent, if not nil, receives a fallback:used event for every call
	// answered from the cache: Err is the call's original error and
	// Duration the age of the value served. It is called synchronously,
	// on the caller's goroutine, after the cache lock is released. nil
	// means no events, and none is built.
	OnEvent bulwark.Listener
}

// Validate returns nil if cfg is usable, or an error wrapping
// [ErrInvalidConfig] that names the field it cannot accept. [Fallback],
// [FallbackFunc] and [DoFallback] call it; it is exported so that code
// assembling a stack can report a bad configuration when it is given
// rather than at the first call. It only reads cfg.
func (cfg FallbackConfig) Validate() error {
	if cfg.MaxAge < 0 {
		return fmt.Errorf("%w: FallbackConfig.MaxAge is negative (%v)", ErrInvalidConfig, cfg.MaxAge)
	}
	return nil
}

// DefaultWhen is the default [FallbackConfig].When: it reports whether the
// failure err may be answered from the cache. It returns false for the
// service's final answer (err wraps [bulwark.ErrFinal]: the service is up
// and refused the request on its merits, so an old value would be a wrong
// answer) and for a caller's cancellation (err wraps context.Canceled:
// nobody waits for the answer); true for every other error, rejections and
// timeouts included. It is safe for concurrent use.
func DefaultWhen(err error) bool {
	return !bulwark.IsFinal(err) && !errors.Is(err, context.Canceled)
}

// OnlyRejections reports whether err wraps [bulwark.ErrRejected]. Used as
// [FallbackConfig].When, it serves cached values only to calls that a layer
// refused without running them (an open circuit, too many probes), and
// lets genuine failures of the service through. It is safe for concurrent
// use.
func OnlyRejections(err error) bool {
	return errors.Is(err, bulwark.ErrRejected)
}

// Fallback returns a middleware that remembers the last good result under
// key and serves it when a call fails. It is FallbackFunc with a key
// function that always returns key.
//
// T is usually given and K and V inferred, as in
// cache.Fallback[Page](c, "dashboard", cfg); c may hold T itself or an
// interface type that T implements, so one *Cache[string, any] can back the
// fallbacks of every result type. Fallback finds the key's shard once, so
// its calls skip the hash that FallbackFunc's make. The returned
// middleware, and the Func it builds, are safe for concurrent use.
func Fallback[T any, K comparable, V any](c *Cache[K, V], key K, cfg FallbackConfig) bulwark.Middleware[T] {
	keyFunc := func(context.Context) (K, bool) { return key, true }
	if c == nil || !reflect.ValueOf(key).Comparable() || key != key {
		// Report the nil cache, or fail at each call as FallbackFunc does
		// (an uncomparable key panics like a map's, a NaN is never stored).
		return FallbackFunc[T](c, keyFunc, cfg)
	}
	// The key is fixed: hash it to its shard once, not at every call.
	return fallback[T](c, keyFunc, c.shardFor(key), cfg)
}

// FallbackFunc returns a middleware that stores every successful result of
// the wrapped call in c and answers a failed call with the stored value
// when it can. The key of each call comes from key(ctx), asked only once
// the call has returned; when key returns false the call goes through
// untouched (nothing stored, nothing served). [AttachedKey] is such a
// function, reading the key that [WithKey] attached to the context for
// this call. The wrapped call runs with a context on which AttachedKey
// finds no key, so that a call made inside it is not stored or served
// under this call's key.
//
// A call that fails with an error matching cfg.When is answered with the
// value cached under its key, if there is one younger than cfg.MaxAge that
// has not expired: the call then returns that value and a nil error,
// [bulwark.ReportFrom](ctx).FromCache reports true, and cfg.OnEvent
// receives a fallback:used event. In every other case the call returns
// exactly what the wrapped call returned. A call whose context was made by
// [SkipFallback] is not touched at all. A success is not stored when
// bulwark.ReportFrom(ctx).FromCache reports true: a call made inside it
// was answered from a cache, and its value is not fresh (a call whose
// context carries no Report cannot be told so: attach one with
// bulwark.WithReport where nested calls may be answered from a cache).
//
// V must be T or an interface type that T implements; a value of another
// dynamic type found under a key (when several result types share one
// cache) is not served. When the types do not fit, or cfg is invalid, or c
// or key is nil, the middleware does not run the wrapped call: every call
// returns an error saying why (wrapping [ErrTypeMismatch] or
// [ErrInvalidConfig]). The configuration is checked once, when
// FallbackFunc is called. Applied to a nil function, the middleware
// returns a function whose every call returns an error wrapping
// [ErrInvalid]; nothing panics, nothing is stored.
//
// On the success path the middleware costs a cache write; with a cache of
// T and a key already present it allocates nothing (a cache of an
// interface type allocates to box a T that is not a pointer). A panic in
// the wrapped call or a callback (When, key, OnEvent) propagates; the
// middleware holds no lock while they run, so the cache and the
// middleware keep working for the next call. The returned middleware, and the Func it builds, are
// safe for concurrent use.
func FallbackFunc[T any, K comparable, V any](c *Cache[K, V], key func(ctx context.Context) (K, bool), cfg FallbackConfig) bulwark.Middleware[T] {
	return fallback[T](c, key, nil, cfg)
}

// fallback builds the middleware of FallbackFunc. s, if not nil, is the
// shard of every key that key returns.
func fallback[T any, K comparable, V any](c *Cache[K, V], key func(ctx context.Context) (K, bool), s *shard[K, V], cfg FallbackConfig) bulwark.Middleware[T] {
	p, err := checkFallback[T](c, cfg)
	if err == nil && key == nil {
		err = fmt.Errorf("%w: nil key function given to FallbackFunc", ErrInvalidConfig)
	}
	if err != nil {
		return func(bulwark.Func[T]) bulwark.Func[T] {
			return func(context.Context) (T, error) {
				var zero T
				return zero, err
			}
		}
	}
	return func(next bulwark.Func[T]) bulwark.Func[T] {
		if next == nil {
			return func(context.Context) (T, error) {
				var zero T
				return zero, errNilNext
			}
		}
		return func(ctx context.Context) (T, error) {
			v, err := next(withoutKey(ctx))
			if skipped(ctx) {
				return v, err
			}
			if err != nil && !p.matches(err) {
				return v, err
			}
			k, ok := key(ctx)
			if !ok {
				return v, err
			}
			return complete(ctx, c, s, k, &p, v, err)
		}
	}
}

// DoFallback runs fn and, like a middleware from [Fallback] with the same
// arguments, stores its result under key on success or answers its failure
// from c. It is the form for call sites that have the key and fn in hand
// for each call, such as a stack that assembles its layers per call: it
// builds nothing and, with a cache of T and a key already present,
// allocates nothing. A bad configuration or a type mismatch is returned as
// an error (wrapping [ErrInvalidConfig] or [ErrTypeMismatch]) without
// running fn, and a nil fn as an error wrapping [ErrInvalid]. It is safe
// for concurrent use.
func DoFallback[T any, K comparable, V any](ctx context.Context, c *Cache[K, V], key K, cfg FallbackConfig, fn bulwark.Func[T]) (T, error) {
	p, err := checkFallback[T](c, cfg)
	if err == nil && fn == nil {
		err = errNilFn
	}
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := fn(withoutKey(ctx))
	if skipped(ctx) || (err != nil && !p.matches(err)) {
		return v, err
	}
	return complete(ctx, c, nil, key, &p, v, err)
}

var (
	errNilNext = fmt.Errorf("%w input: fallback middleware applied to a nil function", ErrInvalid)
	errNilFn   = fmt.Errorf("%w input: nil function given to DoFallback", ErrInvalid)
)

// policy is a validated FallbackConfig.
type policy struct {
	when    func(error) bool
	maxAge  int64
	onEvent bulwark.Listener
}

// matches reports whether the failure err may be answered from the cache.
func (p *policy) matches(err error) bool {
	if p.when == nil {
		return DefaultWhen(err)
	}
	return p.when(err)
}

// checkFallback validates the arguments shared by every fallback form and
// returns the policy they describe.
func checkFallback[T any, K comparable, V any](c *Cache[K, V], cfg FallbackConfig) (policy, error) {
	if c == nil {
		return policy{}, fmt.Errorf("%w: nil *Cache given to Fallback", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return policy{}, err
	}
	if err := fits[T, V](); err != nil {
		return policy{}, err
	}
	p := policy{when: cfg.When, maxAge: int64(cfg.MaxAge), onEvent: cfg.OnEvent}
	if p.maxAge == 0 {
		p.maxAge = int64(DefaultMaxAge)
	}
	return p, nil
}

// fits returns nil if a T can be stored as a V: V is T, or an interface
// type T implements. The common cases (V is T, V is any) cost a type
// comparison; other interfaces are checked by reflection.
func fits[T, V any]() error {
	if _, same := any((*T)(nil)).(*V); same {
		return nil
	}
	if _, isAny := any((*V)(nil)).(*any); isAny {
		return nil
	}
	tt, vt := reflect.TypeFor[T](), reflect.TypeFor[V]()
	if vt.Kind() == reflect.Interface && tt.AssignableTo(vt) {
		return nil
	}
	return fmt.Errorf("%w: result type %v cannot be stored in a cache of %v", ErrTypeMismatch, tt, vt)
}

// toV converts a T to the cache's value type, which fits has accepted. When
// V is T it copies; otherwise it boxes t in the interface V.
func toV[T, V any](t T) V {
	if p, same := any(&t).(*V); same {
		return *p
	}
	v, _ := any(t).(V) // T implements V; a nil interface T gives the zero V
	return v
}

// toT converts a cached value back to T, reporting false if it holds a
// value of another type.
func toT[T, V any](v V) (T, bool) {
	if p, same := any(&v).(*T); same {
		return *p, true
	}
	t, ok := any(v).(T)
	return t, ok
}

// complete finishes a call that is not skipped and whose failure, if any,
// matches the policy: a success is stored under key, unless the call's
// Report says a value in it came from a cache (a call made inside it was
// answered by a fallback), and a failure is answered from the cache if the
// value there is fresh enough. s is key's shard, or
// nil to find it from key; a key with a known shard is equal to itself.
func complete[T any, K comparable, V any](ctx context.Context, c *Cache[K, V], s *shard[K, V], key K, p *policy, v T, err error) (T, error) {
	if err == nil {
		if bulwark.ReportFrom(ctx).FromCache() {
			// The value is made of one a call inside served from a
			// cache: stored, it would be served as fresh, older than
			// MaxAge.
			return v, nil
		}
		if s != nil {
			c.setIn(s, key, toV[T, V](v), c.ttl)
		} else {
			c.Set(key, toV[T, V](v))
		}
		return v, nil
	}
	var (
		cached V
		age    int64
		ok     bool
	)
	if s != nil {
		cached, age, ok = c.lookupIn(s, key, p.maxAge)
	} else {
		cached, age, ok = c.lookup(key, p.maxAge)
	}
	if !ok {
		return v, err
	}
	t, ok := toT[T](cached)
	if !ok {
		return v, err
	}
	bulwark.ReportFrom(ctx).SetFromCache()
	if p.onEvent != nil {
		p.onEvent(bulwark.Event{
			Kind:     bulwark.FallbackUsed,
			Time:     time.Now(),
			Err:      err,
			Context:  ctx,
			Duration: time.Duration(age),
		})
	}
	return t, nil
}
