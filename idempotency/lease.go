package idempotency

import (
	"context"
	"errors"
	"time"
)

// Lease renewal. While operations run, a Manager keeps one timer (not a
// goroutine) that fires every Lease/3 and extends the lease of every claim
// running in this Manager, so that a slow operation keeps its claim. The
// timer re-arms itself only while claims run; once none does, its last
// firing (at most Lease/3 after the last call returned) finds nothing and
// stops. Each firing runs, in a goroutine of its own, only for the time
// its store calls take. A running call pays one atomic load for all this.

// renewEvery is the renewal period for lease.
func renewEvery(lease time.Duration) time.Duration {
	return max(lease/3, time.Millisecond)
}

// armRenewal makes sure the renewal timer runs. The leader calls it after
// marking its flight claimed.
func (m *Manager) armRenewal() {
	if m.renewArmed.Load() || !m.renewArmed.CompareAndSwap(false, true) {
		return
	}
	m.scheduleRenewal()
}

// scheduleRenewal starts a timer for the next firing. Each firing makes a
// new timer rather than resetting one: a timer belongs to the goroutine
// context that made it (a testing/synctest bubble, for one), and the next
// timer is made by the firing itself or by the call that armed it.
func (m *Manager) scheduleRenewal() {
	time.AfterFunc(renewEvery(m.lease), m.renewLeases)
}

// renewLeases extends the leases of the running claims and schedules the
// next firing while there are any.
func (m *Manager) renewLeases() {
	type claim struct {
		key string
		f   *flight
	}
	var claims []claim
	collect := func() {
		claims = claims[:0]
		for i := range m.flights {
			sh := &m.flights[i]
			sh.mu.Lock()
			for key, f := range sh.flights {
				if f.claimed.Load() && !f.leaseLost.Load() {
					claims = append(claims, claim{key, f})
				}
			}
			sh.mu.Unlock()
		}
	}
	collect()
	for _, c := range claims {
		// Extensions run on a context of their own: no caller's
		// cancellation may cost a running operation its claim. A store
		// failure other than a lost lease is retried at the next firing:
		// a lease outlives two missed extensions.
		err := m.store.Extend(context.Background(), c.key, c.f.owner, m.lease)
		if errors.Is(err, ErrLeaseLost) {
			c.f.leaseLost.Store(true) // its completion will report it
		}
	}
	if len(claims) > 0 {
		m.scheduleRenewal()
		return
	}
	// Disarm, then look again: a leader that marked its flight claimed
	// before the disarm is seen by this second look; one that did so after
	// sees the timer disarmed and arms it itself.
	m.renewArmed.Store(false)
	collect()
	if len(claims) > 0 && m.renewArmed.CompareAndSwap(false, true) {
		m.scheduleRenewal()
	}
}
