package breaker

import (
	"sync/atomic"
	"time"
)

// ratioBuckets is the number of buckets the sampling window is cut into:
// the window slides in steps of a tenth of its length.
const ratioBuckets = 10

// Each bucket counter is one atomic word holding the bucket's epoch (the
// index of the time slot it counts, since the window's base time) in the
// high bits and the count in the low bits, so that moving a bucket on to a
// new slot and counting in it are a single compare-and-swap: no lock, and
// no count can land in a slot it does not belong to.
const (
	countBits = 24
	countMask = 1<<countBits - 1 // a bucket saturates at 16,777,215 calls
	epochBits = 64 - countBits
	epochMask = 1<<epochBits - 1
)

// window counts successes and failures over a sliding time window for
// ratio mode. Its methods take the current time, like the core's, and are
// safe for concurrent use: add is lock-free, so successes in ratio mode
// never take the breaker's mutex.
type window struct {
	base    time.Time     // epoch 0 starts here
	width   time.Duration // length of one bucket
	buckets [ratioBuckets]struct {
		successes, failures atomic.Uint64
	}
}

func newWindow(base time.Time, length time.Duration) *window {
	return &window{base: base, width: length / ratioBuckets}
}

// epoch returns the index of the time slot now falls in. now.Sub
// saturates and width is at least SamplingWindow/10 >= 10ms, so the index
// stays below 2^40 (the bits a bucket keeps for it) for about 348 years;
// a SamplingWindow of math.MaxInt64 keeps every call in slot 0 for 29
// years.
func (w *window) epoch(now time.Time) uint64 {
	d := now.Sub(w.base)
	if d < 0 {
		return 0
	}
	return uint64(d / w.width)
}

// add counts one call that finished at now.
func (w *window) add(now time.Time, failed bool) {
	e := w.epoch(now)
	b := &w.buckets[e%ratioBuckets]
	c := &b.successes
	if failed {
		c = &b.failures
	}
	e &= epochMask
	for {
		old := c.Load()
		var next uint64
		switch d := (e - old>>countBits) & epochMask; {
		case d == 0: // the bucket counts this slot already
			if old&countMask == countMask {
				return
			}
			next = old + 1
		case d < 1<<(epochBits-1): // the bucket holds an older slot: start afresh
			next = e<<countBits | 1
		default: // the bucket has moved on past now: a call a whole window late
			return
		}
		if c.CompareAndSwap(old, next) {
			return
		}
	}
}

// counts returns the successes and failures counted in the window that
// ends at now: the current slot and the ratioBuckets-1 before it.
func (w *window) counts(now time.Time) (successes, failures int) {
	e := w.epoch(now)
	for i := uint64(0); i < ratioBuckets && i <= e; i++ {
		slot := e - i
		b := &w.buckets[slot%ratioBuckets]
		want := slot & epochMask
		if v := b.successes.Load(); v>>countBits == want {
			successes += int(v & countMask)
		}
		if v := b.failures.Load(); v>>countBits == want {
			failures += int(v & countMask)
		}
	}
	return successes, failures
}

// reset forgets every count.
func (w *window) reset() {
	for i := range w.buckets {
		w.buckets[i].successes.Store(0)
		w.buckets[i].failures.Store(0)
	}
}
