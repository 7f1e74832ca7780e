package rollback_test

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// journal records, in order, the compensations that ran.
type journal struct {
	mu  sync.Mutex
	ran []string
}

func (j *journal) undo(name string) func(context.Context) error {
	return func(context.Context) error {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.ran = append(j.ran, name)
		return nil
	}
}

func (j *journal) names() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.ran...)
}

// events collects the events a listener received.
type events struct {
	mu   sync.Mutex
	list []bulwark.Event
}

func (e *events) listen(ev bulwark.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func (e *events) all() []bulwark.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]bulwark.Event(nil), e.list...)
}
