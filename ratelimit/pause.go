package ratelimit

import (
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/sat"
)

// PauseFor holds every call of the limiter until d from now has passed:
// use it when the service answers with a wait (an HTTP 429 or 503 with
// Retry-After), so that all callers back off, not only the one that got
// the answer. A call that may wait until the pause ends waits, then takes
// its token as usual; a call that may not (MaxWait, its context's
// deadline) is refused at once with an error matching [ErrPaused]. Calls
// already waiting for a token wait for the pause too.
//
// A pause only ever grows: PauseFor extends a pause that ends sooner and
// leaves one that ends later alone (use [Limiter.Resume] to end one
// early). d ≤ 0 does nothing; the end saturates, so math.MaxInt64 pauses
// for as long as can be represented (about 292 years). Each pause that
// changes the end sends a RateLimitPaused event. A nil limiter does
// nothing. Safe for concurrent use.
//
// A backend that implements [Pauser] (ratelimit/redislimit) is paused
// too, so that the calls of every process sharing it wait; PauseFor then
// makes a round trip to it. Resume ends the pause of this process only.
func (l *Limiter) PauseFor(d time.Duration) {
	if l == nil || d <= 0 {
		return
	}
	now := time.Now()
	until := int64(sat.Add(now.Sub(l.epoch), d))
	if until <= 0 { // cannot happen: now is after epoch and d > 0
		return
	}
	for {
		p := l.pausedUntil.Load()
		if p >= until {
			return
		}
		if l.pausedUntil.CompareAndSwap(p, until) {
			break
		}
	}
	if p, ok := l.set.backend.(Pauser); ok {
		p.PauseFor(d)
	}
	if fn := l.set.onEvent; fn != nil {
		fn(bulwark.Event{Kind: bulwark.RateLimitPaused, Executor: l.name, Time: now, Duration: d})
	}
}

// Resume ends a pause at once; calls waiting for it go on at the end of
// their wait. A nil limiter does nothing. Safe for concurrent use.
func (l *Limiter) Resume() {
	if l != nil {
		l.pausedUntil.Store(0)
	}
}

// PausedUntil returns when the current pause ends, or the zero time if
// the limiter (or a nil limiter) is not paused. Safe for concurrent use.
func (l *Limiter) PausedUntil() time.Time {
	if l == nil {
		return time.Time{}
	}
	now := time.Now()
	left := l.pauseLeft(now)
	if left <= 0 {
		return time.Time{}
	}
	return now.Add(left)
}
