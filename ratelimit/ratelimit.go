// Package ratelimit limits how many calls per second go to a service,
// with a token bucket built on golang.org/x/time/rate: calls are spaced
// to the service's published limit instead of being answered with HTTP
// 429.
//
// A [Limiter] lets a call go when it gets a token. A call that finds no
// token waits for one, up to MaxWait and its context's deadline; a call
// whose token would come later than that is refused at once (it never
// sleeps uselessly) with an error that matches [ErrLimited] and wraps
// [bulwark.ErrRejected], so retry does not retry it, a circuit breaker does
// not count it and a fallback may answer it.
//
// When the service says to back off (a 429 or 503 with Retry-After),
// [Limiter.PauseFor] holds every call of the limiter for that long, not
// only the one that got the answer.
//
// The tokens come from a [Backend]: the local [TokenBucket] by default, or
// a limit shared by many processes through Redis (the nested module
// ratelimit/redislimit).
//
// Wrap calls with [Do] or [Middleware]; use [Limiter.Wait] where the call
// is not a function. One Limiter serves calls of every result type. A call
// that finds a token allocates nothing and takes only the token bucket's
// lock. The limiter has no background goroutine; a waiting call holds one
// timer.
package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/sat"
)

// rejection is the type of a limiter's refusals: its message names the
// limiter, it unwraps to bulwark.ErrRejected and it matches its kind
// (ErrLimited, or ErrPaused and ErrLimited) with errors.Is. Each limiter
// makes its rejections once, in New, so that refusing allocates nothing.
type rejection struct {
	msg  string
	kind error // ErrLimited or ErrPaused; nil for the sentinels themselves
}

func (e *rejection) Error() string { return e.msg }
func (e *rejection) Unwrap() error { return bulwark.ErrRejected }
func (e *rejection) Is(target error) bool {
	kind := e.kind
	if kind == nil {
		kind = error(e) // a sentinel: its own kind (an unnamed limiter returns it as it is)
	}
	return target == kind || kind == ErrPaused && target == ErrLimited
}

var (
	// ErrLimited matches (with errors.Is) the error returned, without
	// running the call, when a limiter refuses it: its token would come
	// after MaxWait or after its context's deadline. It matches the
	// refusals for a pause too. The error itself names the limiter
	// ("ratelimit notion: rate limit exceeded"); errors.Is(err,
	// bulwark.ErrRejected) holds for it too.
	ErrLimited error = &rejection{msg: "ratelimit: rate limit exceeded"}

	// ErrPaused matches (with errors.Is) the error returned, without
	// running the call, when the limiter is paused (see
	// [Limiter.PauseFor]) past the time the call may wait. The error
	// names the limiter ("ratelimit notion: paused") and matches
	// ErrLimited and bulwark.ErrRejected too.
	ErrPaused error = &rejection{msg: "ratelimit: paused"}
)

// Limiter limits the rate of calls to one service. Create one with [New];
// the zero value is not usable. All methods are safe for concurrent use.
type Limiter struct {
	name       string
	set        settings
	epoch      time.Time // creation: the base of pausedUntil
	errLimited error
	errPaused  error

	pausedUntil atomic.Int64 // time since epoch the pause ends; 0: never paused or resumed
	admitted    atomic.Int64
	delayed     atomic.Int64
	rejected    atomic.Int64
	canceled    atomic.Int64
	waited      atomic.Int64 // nanoseconds
}

// New returns a limiter named name (the executor it guards; it appears in
// rejections and events) configured by cfg. It returns an error wrapping
// [ErrInvalid], naming the field, if cfg is invalid.
func New(name string, cfg Config) (*Limiter, error) {
	s, err := newSettings(name, cfg)
	if err != nil {
		return nil, err
	}
	l := &Limiter{name: name, set: s, epoch: time.Now(), errLimited: ErrLimited, errPaused: ErrPaused}
	if name != "" {
		l.errLimited = &rejection{msg: "ratelimit " + name + ": rate limit exceeded", kind: ErrLimited}
		l.errPaused = &rejection{msg: "ratelimit " + name + ": paused", kind: ErrPaused}
	}
	return l, nil
}

// Name returns the name the limiter was created with ("" for a nil
// limiter).
func (l *Limiter) Name() string {
	if l == nil {
		return ""
	}
	return l.name
}

// Backend returns where the limiter gets its tokens: the [*TokenBucket]
// New built, or Config.Backend (nil for a nil limiter).
func (l *Limiter) Backend() Backend {
	if l == nil {
		return nil
	}
	return l.set.backend
}

// Wait waits until the call may go, and returns nil then. It returns:
//
//   - a rejection matching [ErrLimited] (and wrapping bulwark.ErrRejected)
//     at once, without waiting, when the call's token would come after
//     MaxWait or its context's deadline; a rejection matching [ErrPaused]
//     when the limiter is paused past that time. Either way the
//     [bulwark.Report] in ctx is marked rejected and a RateLimitRejected
//     event is sent, and the refused call consumed no token;
//   - context.Cause(ctx) when the context ends while the call waits (its
//     token is given back if the backend can), or had ended before the
//     call got its token (a token already in the local bucket is taken
//     without looking at ctx);
//   - an error wrapping [ErrInvalid] when l or ctx is nil;
//   - the backend's Reservation.Err if the backend could not decide.
//
// Wait is the two-step form of [Do]: call it right before the call it
// guards. It allocates nothing when a token is there at once.
func (l *Limiter) Wait(ctx context.Context) error {
	if l == nil || ctx == nil {
		return l.invalid(ctx)
	}
	// No limit and no pause: nothing to wait for, not even the clock.
	if l.set.unlimited && l.pausedUntil.Load() == 0 {
		l.admitted.Add(1)
		return nil
	}
	now := time.Now()
	if l.set.local != nil && !l.paused(now) && l.set.local.lim.AllowN(now, 1) {
		l.admitted.Add(1)
		return nil
	}
	return l.waitSlow(ctx, now)
}

func (l *Limiter) invalid(ctx context.Context) error {
	if l == nil {
		return fmt.Errorf("%w limiter: nil", ErrInvalid)
	}
	return fmt.Errorf("%w context: nil (ratelimit %q)", ErrInvalid, l.name)
}

// paused reports whether a pause holds at now. A pause found over is
// cleared, so that an unlimited limiter finds its fast path again.
func (l *Limiter) paused(now time.Time) bool {
	p := l.pausedUntil.Load()
	if p == 0 {
		return false
	}
	if now.Sub(l.epoch) < time.Duration(p) {
		return true
	}
	l.pausedUntil.CompareAndSwap(p, 0)
	return false
}

// pauseLeft returns how long the pause still holds at now (≤ 0: none).
func (l *Limiter) pauseLeft(now time.Time) time.Duration {
	p := l.pausedUntil.Load()
	if p == 0 {
		return 0
	}
	return time.Duration(p) - now.Sub(l.epoch)
}

// waitSlow is Wait when no token was there at once, the limiter is paused
// or the backend is not the local bucket.
func (l *Limiter) waitSlow(ctx context.Context, now time.Time) error {
	if ctx.Err() != nil {
		return l.giveUp(ctx, nil)
	}
	// budget is how long the call may still wait, from now.
	budget := sat.Forever
	switch {
	case l.set.maxWait < 0:
		budget = 0
	case l.set.maxWait > 0:
		budget = l.set.maxWait
	}
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, max(dl.Sub(now), 0))
	}
	end := sat.Add(now.Sub(l.epoch), budget) // the budget's end, since epoch
	start, waited := now, false
	defer func() {
		if waited {
			l.waited.Add(int64(time.Since(start)))
		}
	}()

	// First a pause, then the token, then a pause begun while the call
	// waited for its token.
	if err := l.waitPause(ctx, &now, budget, &waited); err != nil {
		return err
	}
	var giveBack func() // the token's Cancel, once the call holds one
	for {
		budget = max(end-now.Sub(l.epoch), 0)
		r := l.set.backend.Reserve(ctx, now, budget)
		if r.Err != nil {
			return r.Err
		}
		if r.OK {
			giveBack = r.Cancel
			if r.Delay > 0 {
				if ctx.Err() != nil {
					return l.giveUp(ctx, r.Cancel)
				}
				waited = true
				if !sleep(ctx, r.Delay) {
					return l.giveUp(ctx, r.Cancel)
				}
				now = time.Now()
			}
			break
		}
		if r.Delay <= 0 || r.Delay > budget {
			return l.reject(ctx, l.errLimited, r.Delay)
		}
		if ctx.Err() != nil {
			return l.giveUp(ctx, nil)
		}
		waited = true
		if !sleep(ctx, r.Delay) {
			return l.giveUp(ctx, nil)
		}
		now = time.Now()
	}
	if err := l.waitPause(ctx, &now, max(end-now.Sub(l.epoch), 0), &waited); err != nil {
		// A pause began while the call waited for its token, and the call
		// will not run: its token goes back, as when its context ends.
		if giveBack != nil {
			giveBack()
		}
		return err
	}
	l.admitted.Add(1)
	if waited {
		l.delayed.Add(1)
	}
	return nil
}

// waitPause waits for a pause to end if it ends within budget, and
// refuses the call at once otherwise.
func (l *Limiter) waitPause(ctx context.Context, now *time.Time, budget time.Duration, waited *bool) error {
	left := l.pauseLeft(*now)
	if left <= 0 {
		return nil
	}
	if left > budget {
		return l.reject(ctx, l.errPaused, left)
	}
	if ctx.Err() != nil {
		return l.giveUp(ctx, nil)
	}
	*waited = true
	if !sleep(ctx, left) {
		return l.giveUp(ctx, nil)
	}
	*now = time.Now()
	return nil
}

// giveUp ends a call whose context ended while it waited: it gives its
// token back, if it had one, and returns the context's cause.
func (l *Limiter) giveUp(ctx context.Context, cancel func()) error {
	if cancel != nil {
		cancel()
	}
	l.canceled.Add(1)
	return context.Cause(ctx)
}

// sleep waits for d or the end of ctx, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// reject counts and reports a refusal of a call that needed to wait
// needed.
func (l *Limiter) reject(ctx context.Context, err error, needed time.Duration) error {
	l.rejected.Add(1)
	bulwark.ReportFrom(ctx).SetRejected()
	if fn := l.set.onEvent; fn != nil {
		fn(bulwark.Event{
			Kind:     bulwark.RateLimitRejected,
			Executor: l.name,
			Time:     time.Now(),
			Context:  ctx,
			Err:      err,
			Duration: needed,
		})
	}
	return err
}
