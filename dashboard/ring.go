package dashboard

import (
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
)

// forced marks a kept circuit:opened event caused by ForceOpen.
type forced struct{}

// ring keeps the latest events, at most len(buf); safe for concurrent use.
type ring struct {
	mu   sync.Mutex
	buf  []bulwark.Event
	next int // where the next event goes
	n    int // events held, at most len(buf)
}

func newRing(size int) *ring { return &ring{buf: make([]bulwark.Event, size)} }

// add keeps ev, dropping the oldest event when full. It keeps of
// ev.Detail (the breaker's statistics on circuit events) only whether an
// operator forced the circuit open, as Detail = forced{}.
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
