package idempotency

import (
	"context"
	"errors"
	"sync"
	"time"
)

// renewal extends a claim's lease every Lease/3 while its operation runs,
// so that a slow operation keeps its claim. It is one timer per running
// leader, not a goroutine: the timer's function runs (in a goroutine of
// its own) only when it fires, and stop waits for a firing in progress, so
// nothing outlives the call that started it.
type renewal struct {
	mu      sync.Mutex
	stopped bool
	timer   *time.Timer
	firing  sync.WaitGroup // one count per armed timer, done when it has run or been stopped
}

// renew starts extending owner's lease on key. The extensions run on
// context.WithoutCancel(ctx): a caller that gives up does not make its
// running operation lose its claim. If an extension finds the lease lost,
// renewal stops; the completion then reports it.
func (m *Manager) renew(ctx context.Context, key, owner string) *renewal {
	r := &renewal{}
	every := max(m.lease/3, time.Millisecond)
	storeCtx := context.WithoutCancel(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.firing.Add(1)
	r.timer = time.AfterFunc(every, func() {
		defer r.firing.Done()
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.stopped {
			return
		}
		// A store failure other than a lost lease is retried at the next
		// tick: a lease outlives two missed extensions.
		if err := m.store.Extend(storeCtx, key, owner, m.lease); errors.Is(err, ErrLeaseLost) {
			r.stopped = true
			return
		}
		r.firing.Add(1)
		r.timer.Reset(every)
	})
	return r
}

// stop ends the renewal and returns once no extension is running.
func (r *renewal) stop() {
	r.mu.Lock()
	r.stopped = true
	if r.timer.Stop() {
		r.firing.Done() // the armed timer will never run
	}
	r.mu.Unlock()
	r.firing.Wait()
}
