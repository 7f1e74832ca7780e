package dashboard

import (
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
)

// ring keeps the latest events, at most len(buf); safe for concurrent use.
type ring struct {
	mu   sync.Mutex
	buf  []bulwark.Event
	next int // where the next event goes
	n    int // events held, at most len(buf)
}

func newRing(size int) *ring { return &ring{buf: make([]bulwark.Event, size)} }

// add keeps ev, dropping the oldest event when full. It drops ev.Detail
// (the breaker's statistics), which the page does not show.
func (r *ring) add(ev bulwark.Event) {
	ev.Detail = nil
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	r.mu.Lock()
	r.buf[r.next] = ev
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	r.mu.Unlock()
}

// latest returns the events held, newest first.
func (r *ring) latest() []bulwark.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]bulwark.Event, r.n)
	for i := range out {
		out[i] = r.buf[(r.next-1-i+2*len(r.buf))%len(r.buf)]
	}
	return out
}
