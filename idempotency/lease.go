package idempotency

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/sat"
)

// Lease renewal. While operations run, a Manager keeps one timer (not a
// goroutine) that fires every Lease/3 and extends the lease of every claim
// running in this Manager, so that a slow operation keeps its claim. The
// timer re-arms itself only while claims run; once none does, its last
// firing (at most Lease/3 after the last call returned) finds nothing and
// stops. Each firing runs, in a goroutine of its own, only for the time
// its store calls take. A running call pays one atomic load for all this.
//
// A round extends all the claims at once, the claims that missed an
// extension going first: with one ExtendMany call if the store is a
// BatchExtender, else with up to maxConcurrentExtends Extend calls at a
// time. A round
// is bounded by the renewal period, and rounds start at a fixed rate (a
// round that took long does not push the next one back), so that a claim
// is extended every Lease/3 whatever the number of running calls, and is
// lost only if two extensions in a row fail.

// maxConcurrentExtends bounds the concurrent Extend calls of a round over
// a store that is not a BatchExtender.
const maxConcurrentExtends = 64

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
	m.scheduleRenewal(renewEvery(m.lease))
}

// scheduleRenewal starts a timer for the next firing, after d. Each firing
// makes a new timer rather than resetting one: a timer belongs to the
// goroutine context that made it (a testing/synctest bubble, for one), and
// the next timer is made by the firing itself or by the call that armed
// it.
func (m *Manager) scheduleRenewal(d time.Duration) {
	time.AfterFunc(d, m.renewLeases)
}

// runningClaims returns the flights whose leases to extend.
func (m *Manager) runningClaims(hint int) []*flight {
	claims := make([]*flight, 0, hint)
	for i := range m.flights {
		sh := &m.flights[i]
		sh.mu.Lock()
		for _, f := range sh.flights {
			if f.claimed.Load() && !f.leaseLost.Load() {
				claims = append(claims, f)
			}
		}
		sh.mu.Unlock()
	}
	return claims
}

// renewLeases extends the leases of the running claims and schedules the
// next firing while there are any.
func (m *Manager) renewLeases() {
	start := time.Now()
	claims := m.runningClaims(int(m.lastRound.Load()))
	m.lastRound.Store(int64(len(claims)))
	if len(claims) > 0 {
		m.extendAll(claims)
		m.scheduleRenewal(max(renewEvery(m.lease)-time.Since(start), 0))
		return
	}
	// Disarm, then look again: a leader that marked its flight claimed
	// before the disarm is seen by this second look; one that did so after
	// sees the timer disarmed and arms it itself.
	m.renewArmed.Store(false)
	if len(m.runningClaims(0)) > 0 && m.renewArmed.CompareAndSwap(false, true) {
		m.scheduleRenewal(renewEvery(m.lease))
	}
}

// extendAll extends the leases of claims, in one round bounded by the
// renewal period. Extensions run on a context of their own: no caller's
// cancellation may cost a running operation its claim.
func (m *Manager) extendAll(claims []*flight) {
	// Most urgent first: a claim that missed an extension goes ahead of
	// those that did not, so that a round cut short by its deadline does
	// not fail the same claims twice.
	urgentFirst(claims, sat.AddNanos(m.now(), m.lease-renewEvery(m.lease)))
	if be, ok := m.store.(BatchExtender); ok {
		refs := make([]ClaimRef, len(claims))
		for i, f := range claims {
			refs[i] = ClaimRef{Key: f.key, Owner: f.owner}
		}
		ctx, cancel := context.WithTimeout(context.Background(), renewEvery(m.lease))
		defer cancel()
		start := m.now()
		errs, err := be.ExtendMany(ctx, refs, m.lease)
		if err == nil && len(errs) != len(claims) {
			err = fmt.Errorf("idempotency: %T.ExtendMany returned %d outcomes for %d claims", m.store, len(errs), len(claims))
		}
		for i, f := range claims {
			e := err
			if e == nil {
				e = errs[i]
			}
			m.extended(f, start, e)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), renewEvery(m.lease))
	defer cancel()
	var next atomic.Int64
	work := func() {
		for {
			i := next.Add(1) - 1
			if i >= int64(len(claims)) || ctx.Err() != nil {
				return
			}
			f := claims[i]
			start := m.now()
			m.extended(f, start, m.store.Extend(ctx, f.key, f.owner, m.lease))
		}
	}
	workers := min(len(claims), maxConcurrentExtends)
	if workers == 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
}

// urgentFirst moves the claims whose lease ends before soon (they missed
// an extension) ahead of the others, in one pass.
func urgentFirst(claims []*flight, soon int64) {
	i := 0
	for j, f := range claims {
		if f.leaseEnd.Load() < soon {
			claims[i], claims[j] = claims[j], claims[i]
			i++
		}
	}
}

// extended records the outcome of an extension of f's lease begun at start
// (on the Manager's clock). A store failure other than a lost lease is
// retried at the next round: a lease outlives one missed extension.
func (m *Manager) extended(f *flight, start int64, err error) {
	switch {
	case err == nil:
		// The store pushed the lease back to at least lease after start.
		f.leaseEnd.Store(sat.AddNanos(start, m.lease))
	case errors.Is(err, ErrLeaseLost):
		f.leaseLost.Store(true) // its completion will report it
	}
}
