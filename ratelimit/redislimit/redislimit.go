// Package redislimit is a rate limit shared by many processes through one
// Redis server: a [ratelimit.Backend] whose tokens come from a GCRA
// (generic cell rate algorithm) kept in Redis, so that every process
// calling a service with the same Key shares its published limit (Notion:
// 3 requests per second per integration, shared by every instance).
//
//	shared, err := redislimit.New(client, redislimit.Config{Key: "notion", Rate: 3})
//	if err != nil {
//		return err
//	}
//	l, err := ratelimit.New("notion", ratelimit.Config{Backend: shared, MaxWait: 2 * time.Second})
//
// The algorithm is github.com/go-redis/redis_rate (v10): one Lua script,
// run atomically by Redis on its own clock, decides each call. It does not
// reserve future tokens: a call that finds none learns how long until the
// next one, and the [ratelimit.Limiter] asks again after that wait if the
// call may wait so long, and refuses it at once otherwise. Under contention
// a waiting call may find the token taken by another process and wait
// again, so waits are fair only on average.
//
// With Burst 1 each interval also loses the time between the moment the
// token is due and the arrival of the call that wins it (a wake-up and a
// round trip): GCRA does not carry that lateness over, so a saturated
// limit runs a few percent under Rate (about 47 calls per second for 50
// on a loaded machine). A Burst of 2 or more absorbs the lateness.
//
// If Redis cannot be reached (an error, or no answer within
// Config.Timeout), the limiter fails open to a local limiter: for
// Config.Cooldown every call takes its token from Config.Fallback (by
// default a local token bucket with the same Rate and Burst, so each
// process alone may then go at the full rate), then the next call tries
// Redis again. Config.OnError hears every failure.
//
// A pause for Retry-After ([ratelimit.Limiter.PauseFor]) holds every
// process: the Limiter implements [ratelimit.Pauser] by moving the shared
// GCRA record forward, so the other processes learn that the next token
// is that far away.
//
// The package lives in a
// module of its own, so that the core bulwark module does not depend on
// go-redis.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// The defaults that zero Config fields stand for.
const (
	DefaultTimeout  = 100 * time.Millisecond
	DefaultCooldown = time.Second
)

// ErrInvalid is wrapped by every error [New] returns for a bad argument or
// Config field; the message names it.
var ErrInvalid = errors.New("redislimit: invalid")

// Config configures a [Limiter].
type Config struct {
	// Key names the limit in Redis: every process whose limiter has the
	// same Key (on the same server) shares one limit. It is stored under
	// "rate:" + Key. Required.
	Key string

	// Rate is the number of calls per second all the processes together
	// may make. Fractions are fine (0.5: one call every two seconds).
	// Required; must be finite.
	Rate float64

	// Burst is how many calls may go at once after a quiet period.
	// Default 1: calls are spaced 1/Rate apart.
	Burst int

	// Timeout bounds each Redis round trip, through its context (the
	// caller's context bounds it too). Default 100ms ([DefaultTimeout]);
	// negative: no bound of its own. go-redis applies a context's
	// deadline to reads and writes only when the client was created with
	// ContextTimeoutEnabled: true; otherwise its ReadTimeout and
	// WriteTimeout (3 s by default) bound a round trip to a server that
	// does not answer, and Timeout only bounds dialing.
	Timeout time.Duration

	// Cooldown is how long the limiter uses Fallback after Redis failed,
	// before it tries Redis again. Default 1s ([DefaultCooldown]).
	Cooldown time.Duration

	// Fallback is where tokens come from while Redis is unreachable.
	// Default: a local [ratelimit.TokenBucket] with Rate and Burst, so
	// that each process alone keeps to the limit (n processes together
	// may then make n × Rate calls per second; give each a share, such as
	// ratelimit.NewTokenBucket(Rate/n, 1), to keep the total).
	Fallback ratelimit.Backend

	// OnError, if set, hears every Redis failure that made a call fall
	// back to Fallback, on that call's goroutine and never under a lock.
	// The caller's own cancellation is not a failure.
	OnError func(error)
}

// Limiter is a [ratelimit.Backend] shared through Redis. Create one with
// [New]; the zero value is not usable. Safe for concurrent use.
type Limiter struct {
	client   redis.UniversalClient
	rl       *redis_rate.Limiter
	key      string
	limit    redis_rate.Limit
	timeout  time.Duration // ≤ 0: none
	cooldown time.Duration
	fallback ratelimit.Backend
	onError  func(error)

	failedUntil atomic.Int64 // unix nanoseconds until which Redis is skipped; 0: not failing
	allowed     atomic.Int64
	denied      atomic.Int64
	failures    atomic.Int64
	fallbacks   atomic.Int64

	mu      sync.Mutex
	lastErr error
}

// New returns a limiter over client (a single server, a failover client
// or a cluster) configured by cfg. It does not contact Redis. It returns
// an error wrapping [ErrInvalid], naming the field, for a nil client or an
// invalid cfg.
func New(client redis.UniversalClient, cfg Config) (*Limiter, error) {
	bad := func(field string, v any, why string) error {
		return fmt.Errorf("%w Config.%s: %v %s", ErrInvalid, field, v, why)
	}
	switch {
	case client == nil:
		return nil, fmt.Errorf("%w client: nil", ErrInvalid)
	case cfg.Key == "":
		return nil, fmt.Errorf("%w Config.Key: empty (name the limit the processes share)", ErrInvalid)
	case math.IsNaN(cfg.Rate) || cfg.Rate <= 0 || math.IsInf(cfg.Rate, 1):
		return nil, bad("Rate", cfg.Rate, "(must be positive and finite)")
	case cfg.Rate > 1e9:
		return nil, bad("Rate", cfg.Rate, "is more than 1e9 calls per second")
	case cfg.Burst < 0:
		return nil, bad("Burst", cfg.Burst, "is negative")
	case cfg.Cooldown < 0:
		return nil, bad("Cooldown", cfg.Cooldown, "is negative")
	}
	l := &Limiter{
		client:   client,
		rl:       redis_rate.NewLimiter(client),
		key:      cfg.Key,
		limit:    limitOf(cfg.Rate, max(cfg.Burst, 1)),
		timeout:  cfg.Timeout,
		cooldown: cfg.Cooldown,
		fallback: cfg.Fallback,
		onError:  cfg.OnError,
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if l.cooldown == 0 {
		l.cooldown = DefaultCooldown
	}
	if l.fallback == nil {
		tb, err := ratelimit.NewTokenBucket(cfg.Rate, cfg.Burst)
		if err != nil {
			return nil, err // cannot happen: Rate and Burst were checked
		}
		l.fallback = tb
	}
	return l, nil
}

// limitOf expresses ratePerSecond as redis_rate's whole number of calls
// per period: per second for a whole rate, otherwise one call per 1/rate.
func limitOf(ratePerSecond float64, burst int) redis_rate.Limit {
	if ratePerSecond == math.Trunc(ratePerSecond) {
		return redis_rate.Limit{Rate: int(ratePerSecond), Period: time.Second, Burst: burst}
	}
	period := time.Duration(math.Round(float64(time.Second) / ratePerSecond))
	return redis_rate.Limit{Rate: 1, Period: max(period, 1), Burst: burst}
}

// Key returns the limit's name in Redis (stored under "rate:" + Key); ""
// for a nil limiter.
func (l *Limiter) Key() string {
	if l == nil {
		return ""
	}
	return l.key
}

// Reserve implements [ratelimit.Backend]: it asks Redis for a token. The
// answer is OK (go now), or not OK with the time until the next token.
// If Redis fails, or failed less than Cooldown ago, the call takes its
// token from Fallback instead; if the caller's context ends during the
// round trip, Reserve returns its cause as Reservation.Err; a nil l or
// ctx gives an error wrapping [ErrInvalid] there.
func (l *Limiter) Reserve(ctx context.Context, now time.Time, maxWait time.Duration) ratelimit.Reservation {
	switch {
	case l == nil:
		return ratelimit.Reservation{Err: fmt.Errorf("%w limiter: nil", ErrInvalid)}
	case ctx == nil:
		return ratelimit.Reservation{Err: fmt.Errorf("%w context: nil (redislimit %q)", ErrInvalid, l.key)}
	}
	if until := l.failedUntil.Load(); until != 0 && now.UnixNano() < until {
		l.fallbacks.Add(1)
		return l.fallback.Reserve(ctx, now, maxWait)
	}
	rctx, cancel := ctx, context.CancelFunc(nil)
	if l.timeout > 0 {
		rctx, cancel = context.WithTimeout(ctx, l.timeout)
	}
	res, err := l.rl.Allow(rctx, l.key, l.limit)
	if cancel != nil {
		cancel()
	}
	if err != nil {
		if ctx.Err() != nil {
			return ratelimit.Reservation{Err: context.Cause(ctx)}
		}
		l.fail(now, err)
		l.fallbacks.Add(1)
		return l.fallback.Reserve(ctx, now, maxWait)
	}
	if l.failedUntil.Load() != 0 {
		l.failedUntil.Store(0)
	}
	if res.Allowed > 0 {
		l.allowed.Add(1)
		return ratelimit.Reservation{OK: true}
	}
	l.denied.Add(1)
	return ratelimit.Reservation{Delay: max(res.RetryAfter, time.Microsecond)}
}

// fail records a Redis failure and starts the cooldown.
func (l *Limiter) fail(now time.Time, err error) {
	l.failures.Add(1)
	l.failedUntil.Store(max(now.Add(l.cooldown).UnixNano(), 1))
	l.mu.Lock()
	l.lastErr = err
	l.mu.Unlock()
	if l.onError != nil {
		l.onError(fmt.Errorf("redislimit %q: Redis failed, falling back to the local limiter for %v: %w", l.key, l.cooldown, err))
	}
}

// Stats is a snapshot of a Limiter's counters, from its creation.
type Stats struct {
	// Allowed and Denied count Redis's answers: a token, or none yet.
	Allowed, Denied int64
	// Failures counts Redis round trips that failed (those of Reserve
	// start a Cooldown; those of PauseFor do not); Fallbacks counts the
	// calls answered by Fallback.
	Failures, Fallbacks int64
	// FailingOpen reports whether the limiter is in a Cooldown now.
	FailingOpen bool
	// LastError is the last Redis failure, nil if none.
	LastError error
}

// Stats returns a snapshot of l's counters (zero for a nil limiter).
// Safe for concurrent use.
func (l *Limiter) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	l.mu.Lock()
	last := l.lastErr
	l.mu.Unlock()
	until := l.failedUntil.Load()
	return Stats{
		Allowed:     l.allowed.Load(),
		Denied:      l.denied.Load(),
		Failures:    l.failures.Load(),
		Fallbacks:   l.fallbacks.Load(),
		FailingOpen: until != 0 && time.Now().UnixNano() < until,
		LastError:   last,
	}
}
