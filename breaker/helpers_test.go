package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

var errBoom = errors.New("boom")

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []bulwark.Event
}

func (r *recorder) listen(e bulwark.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// lines renders the events as "kind" or "kind FROM->TO".
func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.events))
	for _, e := range r.events {
		line := string(e.Kind)
		if e.From != "" {
			line += " " + e.From + "->" + e.To
		}
		out = append(out, line)
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

func (r *recorder) all() []bulwark.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bulwark.Event(nil), r.events...)
}

// clock moves a synctest bubble's virtual time to offsets from its start
// and lets the bubble's timers run before returning.
type clock struct{ start time.Time }

func newClock() clock { return clock{start: time.Now()} }

func (c clock) at(d time.Duration) {
	time.Sleep(time.Until(c.start.Add(d)))
	synctest.Wait()
}

func (c clock) since() time.Duration { return time.Since(c.start) }

func newBreakerT(t *testing.T, cfg Config) *Breaker {
	t.Helper()
	b, err := New("svc", cfg)
	require.NoError(t, err)
	return b
}

// call runs one call through b that returns err, and reports whether fn
// ran and the error Do returned.
func call(b *Breaker, err error) (ran bool, out error) {
	_, out = Do(context.Background(), b, func(context.Context) (int, error) {
		ran = true
		return 1, err
	})
	return ran, out
}

func ok(b *Breaker) error   { _, err := call(b, nil); return err }
func fail(b *Breaker) error { _, err := call(b, errBoom); return err }

// openBreaker fails calls until b opens.
func openBreaker(t *testing.T, b *Breaker) {
	t.Helper()
	for i := 0; !b.IsOpen(); i++ {
		require.Less(t, i, 1000, "the breaker never opened")
		fail(b)
	}
}

// modes are the two paths a breaker can take: timed (a listener, the
// default request timeout) and fast (no clock on the hot path).
var modes = []struct {
	name string
	cfg  func(Config, *recorder) Config
}{
	{"timed", func(c Config, r *recorder) Config { c.OnEvent = r.listen; return c }},
	{"fast", func(c Config, _ *recorder) Config { c.RequestTimeout = -1; return c }},
}

func fmtStates(states ...State) string { return fmt.Sprint(states) }
