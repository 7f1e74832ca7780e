package bulkhead

import "time"

// waiter is a call waiting in the queue. Its fields other than ready are
// guarded by the bulkhead's mutex.
type waiter struct {
	ready      chan struct{} // closed when the waiter is granted a slot
	granted    bool
	prev, next *waiter
}

// leave takes w out of the queue if it is still there and reports whether
// it had been granted a slot instead.
func (b *Bulkhead) leave(w *waiter) (granted bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.granted {
		return true
	}
	b.unlinkLocked(w)
	b.state.Add(^uint64(oneWaiter - 1)) // -oneWaiter
	return false
}

// unlinkLocked removes w from the queue, forgetting the drain estimate
// when the queue becomes empty.
func (b *Bulkhead) unlinkLocked(w *waiter) {
	if w.prev == nil {
		b.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		b.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
	if b.head == nil {
		b.interval, b.lastHandoff = 0, time.Time{}
	}
}

// handoffLocked grants free slots to waiters, first come first served.
func (b *Bulkhead) handoffLocked() {
	for b.head != nil {
		s := b.state.Load()
		if s&inFlightMask >= b.set.maxConcurrent {
			return
		}
		if !b.state.CompareAndSwap(s, s+1-oneWaiter) {
			continue
		}
		w := b.head
		w.granted = true
		now := time.Now()
		if !b.lastHandoff.IsZero() {
			iv := now.Sub(b.lastHandoff)
			if b.interval == 0 {
				b.interval = iv
			} else {
				b.interval += (iv - b.interval) / 8
			}
		}
		b.unlinkLocked(w) // forgets the estimate if w was the last
		if b.head != nil {
			b.lastHandoff = now
		}
		b.admitted.Add(1)
		close(w.ready)
	}
}
