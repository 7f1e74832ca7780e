package pipeline_test

import (
	"errors"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDown = errors.New("service unavailable")

// recorder collects events, safe for concurrent use.
type recorder struct {
	mu     sync.Mutex
	events []bulwark.Event
}

func (r *recorder) listen(e bulwark.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// kinds returns the kinds seen for executor, in order.
func (r *recorder) kinds(executor string) []bulwark.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []bulwark.EventKind
	for _, e := range r.events {
		if e.Executor == executor {
			out = append(out, e.Kind)
		}
	}
	return out
}

func (r *recorder) count(executor string, kind bulwark.EventKind) int {
	n := 0
	for _, k := range r.kinds(executor) {
		if k == kind {
			n++
		}
	}
	return n
}

// countAll counts the events of kind, whatever their executor.
func (r *recorder) countAll(kind bulwark.EventKind) int {
	n := 0
	for _, e := range r.all() {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// all returns a copy of the events seen.
func (r *recorder) all() []bulwark.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bulwark.Event(nil), r.events...)
}
