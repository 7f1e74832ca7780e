package ratelimit

import "time"

// Stats is a snapshot of a limiter's counters. The totals count from the
// limiter's creation.
type Stats struct {
	// Rate and Burst are the local token bucket's (after defaults); both
	// 0 when the limiter's Backend is something else, such as a shared
	// limit.
	Rate  float64
	Burst int
	// Admitted is the number of calls let through.
	Admitted int64
	// Delayed is the number of admitted calls that waited (for a token or
	// a pause) before they went.
	Delayed int64
	// Rejected is the number of calls refused (matching [ErrLimited]).
	Rejected int64
	// Canceled is the number of calls whose context ended before they
	// got their token (while they waited, or before they asked).
	Canceled int64
	// Waited is the total time calls spent waiting, admitted or not.
	Waited time.Duration
	// PausedUntil is when the current pause ends; zero if none.
	PausedUntil time.Time
}

// Stats returns a snapshot of l's counters (zero for a nil limiter). The
// fields are read one by one, so under load they may be off by the calls
// in progress. Safe for concurrent use.
func (l *Limiter) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	var rate float64
	var burst int
	if tb := l.set.local; tb != nil {
		rate, burst = tb.Rate(), tb.Burst()
	}
	return Stats{
		Rate:        rate,
		Burst:       burst,
		Admitted:    l.admitted.Load(),
		Delayed:     l.delayed.Load(),
		Rejected:    l.rejected.Load(),
		Canceled:    l.canceled.Load(),
		Waited:      time.Duration(l.waited.Load()),
		PausedUntil: l.PausedUntil(),
	}
}

// PauseLeft is how long the pause still holds at now: PausedUntil − now,
// or 0 when no pause holds (PausedUntil is zero or not after now).
func (s Stats) PauseLeft(now time.Time) time.Duration {
	if !s.PausedUntil.After(now) {
		return 0
	}
	return s.PausedUntil.Sub(now)
}
