package dashboard

import (
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
)

// forced marks a kept circuit:opened event caused by ForceOpen.
type forced struct{}

// ring keeps the latest events, at most size of them, newest first; safe
// for concurrent use.
//
// State changes (circuit events, failed compensations) are kept apart
// from the routine events, in a buffer of their own of the same size, so
// that a flood of rejections during an overload cannot push the
// circuit:opened that explains it off the page: latest returns every
// state change held (up to size) and fills the rest with the newest
// routine events, merged in the order the events arrived.
type ring struct {
	mu      sync.Mutex
	size    int
	seq     uint64 // arrival order of the events kept
	changes buffer
	routine buffer
}

// buffer is a circular buffer of events with their arrival numbers.
type buffer struct {
	evs  []bulwark.Event
	seqs []uint64
	next int // where the next event goes
	n    int // events held, at most len(evs)
}

func newBuffer(size int) buffer {
	return buffer{evs: make([]bulwark.Event, size), seqs: make([]uint64, size)}
}

// at returns the i-th newest event held (0: the newest) and its number.
func (b *buffer) at(i int) (bulwark.Event, uint64) {
	j := (b.next - 1 - i + 2*len(b.evs)) % len(b.evs)
	return b.evs[j], b.seqs[j]
}

func (b *buffer) add(ev bulwark.Event, seq uint64) {
	b.evs[b.next], b.seqs[b.next] = ev, seq
	b.next = (b.next + 1) % len(b.evs)
	b.n = min(b.n+1, len(b.evs))
}

func newRing(size int) *ring {
	return &ring{size: size, changes: newBuffer(size), routine: newBuffer(size)}
}

// stateChange reports whether events of kind k are kept apart (see ring).
func stateChange(k bulwark.EventKind) bool {
	switch k {
	case bulwark.CircuitOpened, bulwark.CircuitHalfOpen, bulwark.CircuitClosed, bulwark.RollbackFailed:
		return true
	}
	return false
}

// add keeps ev, dropping the oldest event of its kind (state change or
// routine) when full. It keeps of ev.Detail (the breaker's statistics on
// circuit events) only whether an operator forced the circuit open, as
// Detail = forced{}.
func (r *ring) add(ev bulwark.Event) {
	if st, ok := ev.Detail.(breaker.Stats); ok && st.Forced && ev.Kind == bulwark.CircuitOpened {
		ev.Detail = forced{}
	} else {
		ev.Detail = nil
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	r.mu.Lock()
	r.seq++
	if stateChange(ev.Kind) {
		r.changes.add(ev, r.seq)
	} else {
		r.routine.add(ev, r.seq)
	}
	r.mu.Unlock()
}

// latest returns at most the ring's size of events, newest first: the
// state changes held, and the newest routine events in the room left,
// merged in arrival order.
func (r *ring) latest() []bulwark.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	nc := min(r.changes.n, r.size)
	nr := min(r.routine.n, r.size-nc)
	out := make([]bulwark.Event, 0, nc+nr)
	i, j := 0, 0
	for len(out) < cap(out) {
		var ci, ri uint64
		if i < nc {
			_, ci = r.changes.at(i)
		}
		if j < nr {
			_, ri = r.routine.at(j)
		}
		if ci > ri {
			ev, _ := r.changes.at(i)
			out = append(out, ev)
			i++
		} else {
			ev, _ := r.routine.at(j)
			out = append(out, ev)
			j++
		}
	}
	return out
}
