package idempotency

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/bulwark-go/bulwark/internal/sat"
)

// Result writes. Once fn returned, the leader records its result
// (Complete) or frees the key (Release), and its lease is renewed until
// then. A store that fails such a write (a network blip, a paused or
// failing-over server) is asked again, with backoff, for as long as the
// claim's lease is known to hold, and for one lease at most: while it
// holds, nobody else can have claimed the key, so a later write is as
// good as the first. Only then does the caller get ErrNotRecorded (or
// ErrStore).

// Backoff between write attempts: from writeRetryMin, doubling up to
// writeRetryMax, each wait drawn at random from its upper half.
const (
	writeRetryMin = 10 * time.Millisecond
	writeRetryMax = time.Second
)

// complete records out for f's claim on storeCtx, retrying a failure while
// the lease holds. Its retries ignore the caller's cancellation, as the
// write itself does. A retry told the claim is gone checks whether an
// earlier attempt, whose answer was lost, completed it.
func (m *Manager) complete(storeCtx context.Context, f *flight, out Outcome) error {
	err := m.store.Complete(storeCtx, f.key, f.owner, out, m.ttl)
	if err == nil || !retryableWrite(err) {
		return err
	}
	err = m.retryWrite(nil, f, err, func() error {
		return m.store.Complete(storeCtx, f.key, f.owner, out, m.ttl)
	})
	if errors.Is(err, ErrLeaseLost) && m.completedBy(storeCtx, f) {
		// A failed attempt had landed after all (its answer was lost):
		// the record is this claim's result.
		return nil
	}
	return err
}

// completedBy reports whether the store holds f's key completed by f's
// claim: whether one of f's writes whose answer was lost had landed. A
// store that does not keep the owner of completed records cannot tell.
func (m *Manager) completedBy(storeCtx context.Context, f *flight) bool {
	rec, found, err := m.store.Get(storeCtx, f.key)
	return err == nil && found && rec.State == Completed && rec.Owner == f.owner
}

// release deletes f's claim on storeCtx, retrying a failure while the
// lease holds and ctx has not ended (a caller who gave up need not wait
// for the key to be freed: its lease frees it).
func (m *Manager) release(ctx, storeCtx context.Context, f *flight) error {
	err := m.store.Release(storeCtx, f.key, f.owner)
	if err == nil || !retryableWrite(err) {
		return err
	}
	return m.retryWrite(ctx.Done(), f, err, func() error {
		return m.store.Release(storeCtx, f.key, f.owner)
	})
}

// retryWrite calls write again, with backoff, until it succeeds or fails
// for good, the lease of f runs out (or one lease passed: renewal may
// push the lease back meanwhile), or stop is closed. err is the first
// attempt's error; the last error is returned, saying how many attempts
// were made.
func (m *Manager) retryWrite(stop <-chan struct{}, f *flight, err error, write func() error) error {
	backoff := writeRetryMin
	attempts := 1
	until := sat.AddNanos(m.now(), m.lease)
	for {
		left := time.Duration(min(f.leaseEnd.Load(), until) - m.now())
		if left <= 0 {
			break
		}
		wait := min(backoff/2+rand.N(backoff/2+1), left)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return fmt.Errorf("%w (%d attempts; the caller's context ended)", err, attempts)
		}
		attempts++
		if err = write(); err == nil || !retryableWrite(err) {
			return err
		}
		backoff = min(2*backoff, writeRetryMax)
	}
	return fmt.Errorf("%w (%d attempts, until the claim's lease ran out)", err, attempts)
}

// retryableWrite reports whether a failed write may succeed if tried
// again: not if the claim is gone (ErrLeaseLost), nor if the store marked
// the error [Permanent] (a value its codec cannot encode) or the input
// invalid.
func retryableWrite(err error) bool {
	return !errors.Is(err, ErrLeaseLost) && !errors.Is(err, ErrInvalid) && !isMarkedPermanent(err)
}
