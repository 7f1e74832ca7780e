package breaker

import (
	"time"

	"github.com/bulwark-go/bulwark/internal/sat"
)

// Stats is a snapshot of a breaker's state and counters, returned by
// [Breaker.Stats] and carried in the Detail of circuit events. Counters
// are totals since the breaker was created ([Breaker.Reset] keeps them).
// Calls still in progress are not counted; under concurrent load the
// fields are each exact but may be read a few calls apart.
type Stats struct {
	// State is the circuit's state.
	State State
	// Forced reports whether ForceOpen holds the circuit open.
	Forced bool

	// Total is the number of finished calls: Successes + Failures +
	// Ignored + Rejections.
	Total int64
	// Successes counts the calls that counted as successes, final answers
	// included.
	Successes int64
	// FinalAnswers counts the calls that ended with the service's final
	// answer (an error wrapping bulwark.ErrFinal, such as an HTTP 404) and
	// counted as successes: the service was up and answered. They are
	// part of Successes.
	FinalAnswers int64
	// Failures counts the calls that counted against the circuit,
	// including timeouts and panics.
	Failures int64
	// Timeouts counts the calls that RequestTimeout cut off (by default
	// also counted in Failures).
	Timeouts int64
	// Ignored counts the calls that counted neither way, such as those
	// the caller cancelled.
	Ignored int64
	// Rejections counts the calls refused without running (ErrOpen,
	// ErrTooManyProbes).
	Rejections int64

	// ConsecutiveSuccesses is the number of successes since the last
	// failure.
	ConsecutiveSuccesses int64
	// ConsecutiveFailures is the number of failures since the last
	// success.
	ConsecutiveFailures int64
	// TimesOpened and TimesClosed count the transitions into OPEN and
	// into CLOSED.
	TimesOpened, TimesClosed int64

	// MeanLatency is the mean duration of the measured calls. Every call
	// is measured when a listener is set or in ratio mode; otherwise one
	// call in 64 is, picked before it runs (so successes and failures are
	// sampled alike), and the others never read the clock at their end.
	// Two-step calls (Allow) are measured only with a listener or in ratio
	// mode. Zero if no call was measured.
	MeanLatency time.Duration

	// LastStateChange is when the state last changed; the creation time if
	// it never did.
	LastStateChange time.Time
	// LastFailure is when the last failure finished; zero if none.
	LastFailure time.Time
	// LastSuccess is when the last success finished; zero if none. It is
	// exact for the first success after a failure or state change and for
	// measured calls; otherwise it may trail the latest success by the
	// unmeasured successes since (see MeanLatency).
	LastSuccess time.Time
	// NextAttempt is when the next call will be let through as a probe,
	// while the circuit is OPEN and not forced; zero otherwise.
	NextAttempt time.Time
}

// Stats returns a snapshot of the breaker's statistics. It is safe for
// concurrent use.
func (b *Breaker) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.statsLocked()
}

func (b *Breaker) statsLocked() Stats {
	t := b.counters.total()
	s := Stats{
		State:                b.c.state,
		Forced:               b.c.forced,
		Successes:            t.successes,
		Failures:             b.failures,
		FinalAnswers:         b.finalN.Load(),
		Timeouts:             b.timeoutN.Load(),
		Ignored:              b.ignoredN.Load(),
		Rejections:           t.rejections,
		ConsecutiveSuccesses: max(t.successes-b.successBase, 0),
		ConsecutiveFailures:  int64(b.c.consecutive),
		TimesOpened:          b.opened,
		TimesClosed:          b.closed,
		LastStateChange:      wall(b.c.changedAt),
		LastFailure:          wall(b.lastFailure),
		NextAttempt:          wall(b.c.nextAttempt),
	}
	if s.LastStateChange.IsZero() {
		s.LastStateChange = wall(b.epoch)
	}
	s.Total = s.Successes + s.Failures + s.Ignored + s.Rejections
	if t.latencyN > 0 {
		s.MeanLatency = time.Duration(t.latencySum / t.latencyN)
	}
	if last := max(t.lastSuccess, b.lastSuccess); last > 0 {
		s.LastSuccess = wall(b.epoch.Add(time.Duration(last - 1)))
	}
	return s
}

// sinceEpoch encodes now as the nanoseconds since the breaker's creation
// plus one, so that 0 can mean "never".
func (b *Breaker) sinceEpoch(now time.Time) int64 {
	return sat.AddNanos(int64(now.Sub(b.epoch)), 1) // Sub saturates; so does the +1
}

// wall strips the monotonic clock reading, so that snapshots print and
// compare as plain times.
func wall(t time.Time) time.Time { return t.Round(0) }
