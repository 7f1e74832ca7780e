package pipeline

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// Config configures the stack of one executor: one sub-config per layer,
// applied in the fixed order idempotency → fallback → breaker → retry →
// bulkhead → ratelimit → attempt timeout → rollback → fn (docs/ordering.md
// says why). A nil sub-config turns its layer off, so the zero Config
// is a stack with no layers at all, which calls fn directly; a non-nil
// sub-config whose fields are zero turns the layer on with that layer's
// documented defaults. [Reliable], [Unreliable] and [Critical] are
// ready-made configurations.
//
// Each layer's own OnEvent listener, if set, still receives that layer's
// events (with Executor set); [Stack.Subscribe] receives every layer's.
//
// Stack-wide settings. Two fields describe the stack rather than one
// executor: the idempotency Store (Idempotency.Store) and Logger. An
// executor given its own Config with [Stack.Configure] inherits them from
// the defaults given to [New] when it leaves them unset (a nil Store in a
// non-nil Idempotency, a nil Logger), so that a shared Store keeps
// exactly-once across processes for every executor and every executor
// logs to the same place. To opt an executor out, name its own: a
// private idempotency.MemoryStore, or slog.New(slog.DiscardHandler). The
// other fields are never inherited.
type Config struct {
	// Idempotency makes calls that carry an idempotency key (the
	// IdempotencyKey or IdempotencyKeyParts call option, or
	// idempotency.WithKey on the context) run at most once per key, and
	// replays the stored result to duplicates. Calls without a key skip
	// the layer. nil: off.
	Idempotency *IdempotencyConfig

	// Fallback stores every successful result in the executor's cache
	// and answers a failed call with the last good result of the same
	// operation, if it is fresh enough. It acts only on calls that name
	// their key (the Operation or FallbackKey call option, or
	// cache.WithKey on the context); other calls pass through untouched.
	// It never answers the service's final answer (bulwark.ErrFinal, such
	// as a 404), and a value it serves is never recorded as an
	// idempotent operation's result. nil: off.
	Fallback *FallbackConfig

	// Breaker is the executor's circuit breaker, with its request
	// timeout. Its OnEvent and Logger are used as well as the stack's.
	// nil: off.
	Breaker *breaker.Config

	// Retry retries failed attempts with backoff, inside the breaker: one
	// logical call counts once against the circuit however many attempts
	// it takes. Each executor has its own Retrier, so a Budget caps the
	// retries of each executor separately. nil: off.
	Retry *retry.Config

	// Bulkhead bounds the attempts in flight to the service at once
	// (MaxConcurrent, default 10), with an optional FIFO queue
	// (MaxWaiting, MaxWait). It sits inside retry, so it counts attempts,
	// and a retry's backoff does not hold a slot. A call it refuses fails
	// with an error matching bulkhead.ErrFull and wrapping
	// bulwark.ErrRejected: it is not retried, the breaker does not count
	// it, and the fallback may answer it. Each executor has its own
	// bulkhead. nil: off.
	Bulkhead *bulkhead.Config

	// RateLimit spaces the attempts to the service to Rate per second
	// (token bucket; Burst, MaxWait), or to a limit shared by many
	// processes (Backend, such as ratelimit/redislimit). An attempt whose
	// token would come too late is refused at once with an error matching
	// ratelimit.ErrLimited and wrapping bulwark.ErrRejected (not retried,
	// not counted by the breaker, answerable by the fallback). When an
	// attempt fails with an error that asks for a wait (a 429 or 503 with
	// Retry-After, see retry.WaitOf), the executor's limiter is paused
	// for that long, capped at Retry.MaxRetryAfter (default 5m), so that
	// every caller of the executor backs off. Each executor has its own
	// limiter; a Backend set here is shared by every executor that uses
	// this Config (give executors their own Config for their own quota).
	// nil: off.
	RateLimit *ratelimit.Config

	// AttemptTimeout bounds each attempt on its own: the attempt's
	// context ends after AttemptTimeout with the cause ErrAttemptTimeout,
	// and its error then wraps ErrAttemptTimeout. A timed-out attempt is
	// transient: retry retries it. The breaker's RequestTimeout still
	// bounds the whole call, every attempt and wait included. 0 (or
	// math.MaxInt64): no per-attempt timeout; negative is an error.
	AttemptTimeout time.Duration

	// Rollback runs each attempt in its own rollback scope, so that
	// compensations registered with rollback.OnRollback undo a failed
	// attempt's partial effects before the next attempt. nil: off (and
	// rollback.OnRollback then reports rollback.ErrNoScope). A Rollback
	// config that names a Journal (rollback.Config.Journal, Registry,
	// Owner) makes the compensations registered through a
	// rollback.Compensation durable: a call that is not inside a
	// journaled workflow of the caller's (rollback.Do, Begin, a Saga with
	// a Journal) is a workflow of its own, recovered by rollback.Recover
	// if the process dies during it; inside one, they join that workflow.
	Rollback *rollback.Config

	// Logger, if set, logs every event of the executor's layers, at the
	// levels of bulwark.LogLevel (Warn when the circuit opens or a
	// compensation fails, Info for other state changes, Debug for
	// per-request events), with the executor, the operation and the
	// call's context (see bulwark.LogListener). Circuit changes are logged
	// by the breaker itself, with its statistics, when Breaker.Logger is
	// nil. While the logger is enabled at Debug, the layers build events
	// for every call (the breaker then reads the clock per call); at Info
	// and above, only the rare events cost anything. nil in an executor's
	// own Config: the Logger of the Stack's defaults (see [Config],
	// stack-wide settings); nil there too: no logging.
	Logger *slog.Logger
}

// IdempotencyConfig configures the idempotency layer of an executor.
type IdempotencyConfig struct {
	// Store keeps the records. Several executors (and processes) may
	// share one Store: keys built from IdempotencyKeyParts are namespaced
	// by executor. nil in an executor's own Config: the Store of the
	// Stack's defaults (see [Config], stack-wide settings); nil there too:
	// each executor gets its own in-memory store, kept for the Stack's
	// lifetime.
	Store idempotency.Store

	// Config is the Manager's configuration: TTL (24h), Lease (1m),
	// DuplicatePolicy, CacheErrors, IsPermanent, OnEvent. Zero fields
	// mean the idempotency package's defaults.
	idempotency.Config
}

// FallbackConfig configures the fallback layer of an executor and the
// cache behind it. Each executor has one cache, shared by every result
// type; entries are kept by operation (see the Operation and FallbackKey
// call options) for at most MaxAge, after which they could not be served.
type FallbackConfig struct {
	// MaxEntries bounds the executor's cache. 0: 10000.
	MaxEntries int

	// FallbackConfig holds When (which failures may be answered from the
	// cache; nil: every error, cache.OnlyRejections: only refusals such as
	// an open circuit), MaxAge (the oldest value that may be served; 0:
	// 5m) and OnEvent.
	cache.FallbackConfig
}

// validate reports the first invalid field of every layer, with the name
// of its layer.
func (c *Config) validate() (layer string, err error) {
	if c.Idempotency != nil {
		if _, err := idempotency.New(nil, c.Idempotency.Config); err != nil {
			return "Idempotency", err
		}
	}
	if c.Fallback != nil {
		if c.Fallback.MaxEntries < 0 {
			return "Fallback", fmt.Errorf("MaxEntries is %d, must not be negative (0 means %d)", c.Fallback.MaxEntries, cache.DefaultMaxEntries)
		}
		if err := c.Fallback.Validate(); err != nil {
			return "Fallback", err
		}
	}
	if c.Breaker != nil {
		if _, err := breaker.New("", *c.Breaker); err != nil {
			return "Breaker", err
		}
	}
	if c.Retry != nil {
		if _, err := retry.New(*c.Retry); err != nil {
			return "Retry", err
		}
	}
	if c.Bulkhead != nil {
		if _, err := bulkhead.New("", *c.Bulkhead); err != nil {
			return "Bulkhead", err
		}
	}
	if c.RateLimit != nil {
		if _, err := ratelimit.New("", *c.RateLimit); err != nil {
			return "RateLimit", err
		}
	}
	if c.AttemptTimeout < 0 {
		return "AttemptTimeout", fmt.Errorf("AttemptTimeout is %v, must not be negative (0 means no per-attempt timeout)", c.AttemptTimeout)
	}
	if c.Rollback != nil {
		if err := c.Rollback.Validate(); err != nil {
			return "Rollback", err
		}
	}
	return "", nil
}
