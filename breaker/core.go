package breaker

import (
	"time"
)

// outcome is how a finished call counts against the circuit.
type outcome uint8

const (
	success outcome = iota
	failure
	ignored // neither way: the call was cut short, or its probe slot is simply freed
)

// transition is a state change; the zero value (CLOSED to CLOSED) and any
// other from == to mean no change.
type transition struct {
	from, to State
}

func (t transition) changed() bool { return t.from != t.to }

// ratioCounts are the calls of the sampling window, this failure included,
// that ratio mode decides on.
type ratioCounts struct {
	failures, total int
}

// core is the circuit's state machine. It is pure: it never reads the
// clock, never locks and never calls out; every method takes the current
// time as now, so its transitions can be tested as tables (in the manner
// of x/time/rate's AllowN). The Breaker owns one, guards it with its mutex
// and calls it with time.Now() only where a decision needs the time.
//
// Each state change increments gen. A call remembers the generation it was
// admitted in, and a result whose generation is no longer current is
// ignored, so a call that started before a change cannot move the new
// state.
type core struct {
	state  State
	gen    uint64
	forced bool // ForceOpen: stays OPEN until Reset

	changedAt   time.Time // last state change
	nextAttempt time.Time // while OPEN and not forced: when the next call becomes a probe

	// run holds the times of the newest failures of the current run of
	// consecutive failures, oldest first from runHead once full, at most
	// failureThreshold of them (consecutive mode only).
	run     []time.Time
	runHead int

	consecutive int // failures since the last success, for Stats

	probes         int // probes in flight in HALF_OPEN
	probeSuccesses int // successful probes in this HALF_OPEN period
}

// allow decides whether a call may run at now. It returns whether the call
// is a HALF_OPEN probe, the state change the decision made (OPEN to
// HALF_OPEN once the reset timeout has passed), and the rejection error if
// the call may not run.
func (c *core) allow(s *settings, now time.Time) (probe bool, tr transition, err error) {
	if c.state == Open {
		if c.forced || now.Before(c.nextAttempt) {
			return false, tr, ErrOpen
		}
		tr = c.moveTo(HalfOpen, s, now)
	}
	if c.state == HalfOpen {
		if c.probes >= s.halfOpenMax {
			return false, tr, ErrTooManyProbes
		}
		c.probes++
		return true, tr, nil
	}
	return false, tr, nil
}

// record counts the outcome of a call admitted in generation gen (as a
// probe if probe is set) that finished at now, and returns the state change
// it caused. A result from an older generation changes nothing. rc carries
// the sampling window's counts for a failure in ratio mode.
func (c *core) record(s *settings, now time.Time, gen uint64, probe bool, o outcome, rc ratioCounts) transition {
	if gen != c.gen {
		return transition{c.state, c.state}
	}
	if probe && c.state == HalfOpen {
		c.probes--
	}
	switch o {
	case success:
		c.consecutive = 0
		c.clearRun()
		if c.state == HalfOpen {
			c.probeSuccesses++
			if c.probeSuccesses >= s.successThreshold {
				return c.moveTo(Closed, s, now)
			}
		}
	case failure:
		c.consecutive++
		switch c.state {
		case HalfOpen:
			return c.moveTo(Open, s, now)
		case Closed:
			if c.tripped(s, now, rc) {
				return c.moveTo(Open, s, now)
			}
		}
	}
	return transition{c.state, c.state}
}

// tripped records a failure at now in CLOSED and reports whether the
// circuit must open.
func (c *core) tripped(s *settings, now time.Time, rc ratioCounts) bool {
	if s.ratio > 0 {
		return rc.total >= s.minThroughput && float64(rc.failures) >= s.ratio*float64(rc.total)
	}
	if len(c.run) < s.failureThreshold {
		c.run = append(c.run, now)
	} else {
		c.run[c.runHead] = now
		c.runHead = (c.runHead + 1) % len(c.run)
	}
	if len(c.run) < s.failureThreshold {
		return false
	}
	oldest := c.run[c.runHead]
	return now.Sub(oldest) <= s.failureWindow
}

func (c *core) clearRun() {
	c.run = c.run[:0]
	c.runHead = 0
}

// moveTo changes the state at now and starts a new generation.
func (c *core) moveTo(to State, s *settings, now time.Time) transition {
	tr := transition{c.state, to}
	c.state = to
	c.gen++
	c.changedAt = now
	c.probes = 0
	c.probeSuccesses = 0
	c.clearRun()
	c.forced = false
	c.nextAttempt = time.Time{}
	if to == Open {
		c.nextAttempt = now.Add(s.resetTimeout) // saturates: MaxInt64 is about 292 years
	}
	return tr
}

// reset closes the circuit and forgets the current failure run (Reset).
func (c *core) reset(s *settings, now time.Time) transition {
	c.consecutive = 0
	return c.moveTo(Closed, s, now)
}

// forceOpen opens the circuit until reset (ForceOpen).
func (c *core) forceOpen(s *settings, now time.Time) transition {
	tr := transition{Open, Open}
	if c.state != Open {
		tr = c.moveTo(Open, s, now)
	}
	c.forced = true
	c.nextAttempt = time.Time{}
	return tr
}

// reconfigure adapts the state to new settings at now, keeping what still
// applies: the state and generation, the newest failures of the run (up to
// the new threshold), the probes in flight; an OPEN circuit's next attempt
// is recomputed from the time it opened and the new ResetTimeout.
func (c *core) reconfigure(s *settings, now time.Time) {
	if s.ratio > 0 {
		c.clearRun()
	} else if n := len(c.run); n > 0 {
		ordered := make([]time.Time, 0, n)
		ordered = append(ordered, c.run[c.runHead:]...)
		ordered = append(ordered, c.run[:c.runHead]...)
		if n > s.failureThreshold {
			ordered = ordered[n-s.failureThreshold:]
		}
		c.run, c.runHead = ordered, 0
	}
	if c.state == Open && !c.forced {
		c.nextAttempt = c.changedAt.Add(s.resetTimeout)
	}
}
