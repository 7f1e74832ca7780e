// Package bulkhead limits how many calls to a service are in flight at
// once, so that one slow service cannot take every goroutine, connection
// or socket of the caller (the bulkhead pattern, named after a ship's
// watertight compartments).
//
// A [Bulkhead] has MaxConcurrent slots. A call takes a slot before it runs
// and gives it back when it returns. When every slot is taken, a call
// waits in an optional FIFO queue of at most MaxWaiting calls, for at most
// MaxWait and as long as its context allows; a call that finds the queue
// full, or cannot get a slot in time, is refused with an error that
// matches [ErrFull] and wraps [bulwark.ErrRejected], so retry does not
// retry it, a circuit breaker does not count it and a fallback may answer
// it.
//
// Wrap calls with [Do] or [Middleware]; use [Bulkhead.Acquire] where the
// call is not a function. One Bulkhead serves calls of every result type.
//
// The uncontended path (a free slot, nobody waiting) takes no lock, reads
// no clock and allocates nothing. The bulkhead has no background
// goroutine; a queued call holds one timer while it waits, when MaxWait is
// set.
package bulkhead

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/sat"
)

// rejection is the type of a bulkhead's refusals: its message names the
// bulkhead, it unwraps to bulwark.ErrRejected and it matches ErrFull with
// errors.Is. Each bulkhead makes its rejection once, in New, so that
// refusing allocates nothing.
type rejection struct {
	msg  string
	kind error // ErrFull; nil for the sentinel itself
}

func (e *rejection) Error() string        { return e.msg }
func (e *rejection) Unwrap() error        { return bulwark.ErrRejected }
func (e *rejection) Is(target error) bool { return e.kind != nil && target == e.kind }

// ErrFull matches (with errors.Is) the error returned, without running the
// call, when a bulkhead refuses it: every slot taken and the queue full (or
// no queue), the call's turn predicted to come after its deadline, or
// MaxWait passed in the queue. The error itself names the bulkhead
// ("bulkhead notion: full"); errors.Is(err, bulwark.ErrRejected) holds for
// it too.
var ErrFull error = &rejection{msg: "bulkhead: full"}

// The state word: calls in flight in the low 32 bits, calls waiting in
// the queue in the high 32 bits. The fast paths change it with one atomic
// operation; the queue is changed under the mutex, together with the
// waiting count.
const (
	inFlightMask = 1<<32 - 1
	oneWaiter    = 1 << 32
)

// Bulkhead limits the number of calls in flight. Create one with [New];
// the zero value is not usable. All methods are safe for concurrent use.
type Bulkhead struct {
	state    atomic.Uint64 // see inFlightMask
	admitted atomic.Int64  // on the same cache line: the fast path writes both
	_        [48]byte

	name    string
	set     settings
	errFull error
	release func() // b.releaseSlot, made once so that Acquire allocates nothing

	rejected atomic.Int64
	queued   atomic.Int64
	canceled atomic.Int64

	mu         sync.Mutex
	head, tail *waiter
	// The drain estimate: the mean time between two hand-offs of a slot
	// to a waiter while the queue stayed non-empty (0: none yet), and the
	// time of the last such hand-off (zero: the queue was empty since).
	interval    time.Duration
	lastHandoff time.Time
}

// New returns a bulkhead named name (the executor it guards; it appears
// in rejections and events) configured by cfg. It returns an error
// wrapping [ErrInvalid], naming the field, if cfg is invalid.
func New(name string, cfg Config) (*Bulkhead, error) {
	s, err := newSettings(name, cfg)
	if err != nil {
		return nil, err
	}
	b := &Bulkhead{name: name, set: s, errFull: ErrFull}
	if name != "" {
		b.errFull = &rejection{msg: "bulkhead " + name + ": full", kind: ErrFull}
	}
	b.release = b.releaseSlot
	return b, nil
}

// Name returns the name the bulkhead was created with ("" for a nil
// bulkhead).
func (b *Bulkhead) Name() string {
	if b == nil {
		return ""
	}
	return b.name
}

// Acquire takes a slot for one call, waiting for one in the queue if the
// bulkhead is full and has a queue. On success it returns release, which
// gives the slot back: call it exactly once, when the call is over (a
// second call would give back a slot held by another call; a release
// without a slot to give back panics). On failure release is nil and err
// is:
//
//   - a rejection matching [ErrFull] (and wrapping bulwark.ErrRejected)
//     when every slot is taken and the queue is full or absent; when the
//     time left to wait (MaxWait, and the context's deadline) is already
//     spent; when the queue's current drain rate says the call's turn
//     would come after that time (the estimate is the mean interval
//     between slots freed while the queue stayed non-empty, times the
//     call's place in the queue); or when MaxWait passes while it waits.
//     The [bulwark.Report] in ctx is marked rejected and a
//     BulkheadRejected event is sent;
//   - context.Cause(ctx) when the context ends while the call waits, or
//     had ended when the call was about to join the queue: the call
//     leaves the queue and holds no slot;
//   - an error wrapping [ErrInvalid] when b or ctx is nil.
//
// A free slot is granted without looking at ctx. Waiters get slots in the
// order they arrived; a call never overtakes a waiter.
func (b *Bulkhead) Acquire(ctx context.Context) (release func(), err error) {
	if b == nil || ctx == nil {
		return nil, b.invalid(ctx)
	}
	// A free slot and nobody waiting: s < max means the waiting count (the
	// high bits) is 0 and fewer than max calls are in flight.
	if s := b.state.Load(); s < b.set.maxConcurrent && b.state.CompareAndSwap(s, s+1) {
		b.admitted.Add(1)
		return b.release, nil
	}
	return b.acquireSlow(ctx)
}

func (b *Bulkhead) invalid(ctx context.Context) error {
	if b == nil {
		return fmt.Errorf("%w bulkhead: nil", ErrInvalid)
	}
	return fmt.Errorf("%w context: nil (bulkhead %q)", ErrInvalid, b.name)
}

// acquireSlow is Acquire when the fast path failed: the bulkhead is full,
// others are waiting, or the compare-and-swap lost a race.
func (b *Bulkhead) acquireSlow(ctx context.Context) (func(), error) {
	var (
		now      time.Time
		budget   time.Duration // how long the call may wait; 0: as long as ctx allows
		budgeted bool          // now and budget are set
	)
	b.mu.Lock()
	for {
		s := b.state.Load()
		if s < b.set.maxConcurrent {
			if b.state.CompareAndSwap(s, s+1) {
				b.mu.Unlock()
				b.admitted.Add(1)
				return b.release, nil
			}
			continue
		}
		waiting := s >> 32
		if waiting >= b.set.maxWaiting {
			b.mu.Unlock()
			return nil, b.reject(ctx, 0)
		}
		if !budgeted {
			if ctx.Err() != nil {
				b.mu.Unlock()
				return nil, context.Cause(ctx)
			}
			now, budget, budgeted = time.Now(), b.set.maxWait, true
			if dl, ok := ctx.Deadline(); ok {
				left := dl.Sub(now)
				if left <= 0 {
					b.mu.Unlock()
					return nil, b.reject(ctx, 0)
				}
				if budget == 0 || left < budget {
					budget = left
				}
			}
		}
		if budget > 0 && b.interval > 0 && sat.MulInt(b.interval, int64(waiting)+1) > budget {
			b.mu.Unlock()
			return nil, b.reject(ctx, 0)
		}
		// Join the queue: the waiting count changes in the same atomic
		// step that sees the bulkhead full, so a release that frees a slot
		// after it sees the waiter and hands the slot over (under the
		// mutex, which this call holds until the waiter is linked).
		if b.state.CompareAndSwap(s, s+oneWaiter) {
			break
		}
	}
	w := &waiter{ready: make(chan struct{})}
	if b.tail == nil {
		b.head = w
	} else {
		b.tail.next, w.prev = w, b.tail
	}
	b.tail = w
	b.mu.Unlock()
	b.queued.Add(1)

	var expired <-chan time.Time
	if b.set.maxWait > 0 {
		t := time.NewTimer(b.set.maxWait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-w.ready:
		return b.release, nil
	case <-ctx.Done():
		if b.leave(w) {
			b.releaseSlot() // granted as the context ended: give it back
		}
		b.canceled.Add(1)
		return nil, context.Cause(ctx)
	case <-expired:
		if b.leave(w) {
			return b.release, nil // granted just in time
		}
		return nil, b.reject(ctx, time.Since(now))
	}
}

// releaseSlot gives a slot back, handing it to the first waiter if any.
func (b *Bulkhead) releaseSlot() {
	s := b.state.Add(^uint64(0)) // -1
	if s&inFlightMask == inFlightMask {
		b.state.Add(1) // undo the borrow before complaining
		panic("bulkhead " + b.name + ": release called more often than Acquire succeeded")
	}
	if s>>32 == 0 {
		return
	}
	b.mu.Lock()
	b.handoffLocked()
	b.mu.Unlock()
}

// reject counts and reports a refusal after the call waited waited.
func (b *Bulkhead) reject(ctx context.Context, waited time.Duration) error {
	b.rejected.Add(1)
	bulwark.ReportFrom(ctx).SetRejected()
	if l := b.set.onEvent; l != nil {
		l(bulwark.Event{
			Kind:     bulwark.BulkheadRejected,
			Executor: b.name,
			Time:     time.Now(),
			Context:  ctx,
			Err:      b.errFull,
			Duration: waited,
		})
	}
	return b.errFull
}
