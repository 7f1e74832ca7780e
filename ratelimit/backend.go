package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Backend is where a [Limiter] gets its tokens: the local token bucket
// ([TokenBucket], what [New] builds from Config.Rate and Config.Burst) or a
// limit shared by many processes (the nested module ratelimit/redislimit).
// The Limiter adds what every backend shares: the wait budget (MaxWait and
// the context's deadline), pauses, events and statistics.
//
// A Backend must be safe for concurrent use.
type Backend interface {
	// Reserve asks for one token, at now, for a call that may wait at
	// most maxWait (≥ 0; sat.Forever when the call has no bound). It
	// must not sleep: it answers at once (after a network round trip,
	// for a shared backend). See [Reservation] for the answers.
	Reserve(ctx context.Context, now time.Time, maxWait time.Duration) Reservation
}

// Pauser is implemented by a [Backend] that can hold the calls of every
// process sharing it, such as redislimit's. [Limiter.PauseFor] calls
// PauseFor whenever it extends its own pause, so that a Retry-After seen
// by one process holds all of them: their backends then answer "no token
// for d". PauseFor returns after at most a round trip and reports its own
// failures; it must be safe for concurrent use.
type Pauser interface {
	PauseFor(d time.Duration)
}

// Reservation is a [Backend]'s answer to one request for a token.
type Reservation struct {
	// OK reports that the call has its token and may go once Delay has
	// passed (0 ≤ Delay ≤ the maxWait asked for).
	//
	// Without OK, nothing was consumed; Delay is then how long until a
	// token may be available: the Limiter asks again after Delay if the
	// call may still wait that long, and refuses the call at once
	// otherwise. A Delay ≤ 0 without OK means no token can come in time
	// (the call is refused).
	OK bool

	// Delay is how long the call waits before it goes (with OK), or until
	// it may ask again (without OK).
	Delay time.Duration

	// Cancel, if not nil, gives back the token of an OK reservation that
	// the call will not use (its context ended while it waited). The
	// Limiter calls it at most once.
	Cancel func()

	// Err, if not nil, means the backend could not decide and the call
	// must not go: the Limiter returns Err without running the call. (A
	// backend that fails open, like redislimit, never sets it.)
	Err error
}

// TokenBucket is the local token bucket, a [Backend] over
// golang.org/x/time/rate's Limiter: it holds at most burst tokens and
// gains rate tokens per second; each call takes one. A reservation that
// would have to wait longer than the call may is cancelled at once, so a
// refused call consumes nothing. Waits are rounded to the microsecond
// (see Reserve). Safe for concurrent use.
type TokenBucket struct {
	lim *rate.Limiter
	mu  sync.Mutex // serializes Reserve's reserve-then-cancel, so a cancel restores its token
}

// NewTokenBucket returns a token bucket that gains ratePerSecond tokens
// per second up to burst. ratePerSecond must be positive (math.Inf(1)
// means no limit); a burst of 0 means 1. It returns an error wrapping
// [ErrInvalid] naming the bad argument.
func NewTokenBucket(ratePerSecond float64, burst int) (*TokenBucket, error) {
	switch {
	case math.IsNaN(ratePerSecond) || ratePerSecond <= 0:
		return nil, fmt.Errorf("%w Rate: %v (must be positive; math.Inf(1) for no limit)", ErrInvalid, ratePerSecond)
	case burst < 0:
		return nil, fmt.Errorf("%w Burst: %d is negative", ErrInvalid, burst)
	case burst == 0:
		burst = 1
	}
	return &TokenBucket{lim: rate.NewLimiter(rate.Limit(ratePerSecond), burst)}, nil
}

// Rate returns the bucket's rate in tokens per second.
func (b *TokenBucket) Rate() float64 { return float64(b.lim.Limit()) }

// Burst returns the bucket's size.
func (b *TokenBucket) Burst() int { return b.lim.Burst() }

// Tokens returns the number of tokens in the bucket at now (negative when
// calls have reserved tokens not yet available).
func (b *TokenBucket) Tokens(now time.Time) float64 { return b.lim.TokensAt(now) }

// Reserve implements [Backend]. It fails only on a nil bucket (an error
// wrapping [ErrInvalid]); it does not use ctx.
func (b *TokenBucket) Reserve(_ context.Context, now time.Time, maxWait time.Duration) Reservation {
	if b == nil {
		return Reservation{Err: fmt.Errorf("%w TokenBucket: nil", ErrInvalid)}
	}
	if b.lim.AllowN(now, 1) {
		return Reservation{OK: true}
	}
	// A call that cannot wait for the next token is refused from a look
	// at the bucket, without a reservation (which would allocate).
	if need := b.delay(now); need > maxWait {
		return Reservation{Delay: need}
	}
	b.mu.Lock()
	r := b.lim.ReserveN(now, 1)
	if !r.OK() { // cannot happen with burst ≥ 1
		b.mu.Unlock()
		return Reservation{}
	}
	// x/time/rate computes waits in float64 seconds, which can come out a
	// nanosecond off the exact interval (8.2s as 8199999999ns); rounding
	// to the microsecond keeps calls exactly 1/rate apart.
	d := r.DelayFrom(now).Round(time.Microsecond)
	if d > maxWait {
		r.CancelAt(now)
		b.mu.Unlock()
		return Reservation{Delay: d}
	}
	b.mu.Unlock()
	return Reservation{OK: true, Delay: d, Cancel: func() { r.CancelAt(time.Now()) }}
}

// delay returns how long from now until the bucket holds a whole token,
// rounded to the microsecond as Reserve rounds waits: what a reservation
// made now would have to wait, unless other calls reserve first.
func (b *TokenBucket) delay(now time.Time) time.Duration {
	limit := b.lim.Limit()
	if limit == rate.Inf {
		return 0
	}
	missing := 1 - b.lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	ns := missing / float64(limit) * float64(time.Second)
	if ns >= math.MaxInt64 || math.IsNaN(ns) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ns).Round(time.Microsecond)
}
