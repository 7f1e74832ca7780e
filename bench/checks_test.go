package bench

import (
	"context"
	"testing"

	"github.com/bulwark-go/bulwark/breaker"
)

// TestChecksCatchShortcuts shows that the checks the benchmarks apply to
// every call reject the results of a library that did less work.
func TestChecksCatchShortcuts(t *testing.T) {
	ctx := t.Context()
	t.Run("value", func(t *testing.T) {
		if checkOK(good, nil) != nil {
			t.Error("checkOK refused a good result")
		}
		if checkOK(0, nil) == nil {
			t.Error("checkOK accepted a zero value")
		}
		if checkOK(good, errDown) == nil {
			t.Error("checkOK accepted an error")
		}
	})
	t.Run("attempts", func(t *testing.T) {
		f := new(flaky)
		f.n = 2 // the next attempt succeeds: one attempt instead of three
		v, err := f.call(ctx)
		if f.check(2, v, err) == nil {
			t.Error("flaky.check accepted a call that took one attempt")
		}
	})
	t.Run("rejection", func(t *testing.T) {
		d := &down{tripped: 0}
		if d.checkRejected(nil, breaker.ErrOpen) == nil {
			t.Error("checkRejected accepted a call that was not refused")
		}
		_, _ = d.call(ctx)
		if d.checkRejected(breaker.ErrOpen, breaker.ErrOpen) == nil {
			t.Error("checkRejected accepted a call that reached the service")
		}
		if d.checkServed(good, nil) == nil {
			t.Error("checkServed accepted a call that reached the service")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		s := newService(t)
		v, err := s.call(t.Context()) // the caller's own context: no timeout applied
		if s.check(v, err) == nil {
			t.Error("service.check accepted a call that ran on the caller's context")
		}
		s = newService(t)
		v, err = s.call(context.Background()) // cannot be cancelled at all
		if s.check(v, err) == nil {
			t.Error("service.check accepted a call whose context cannot end")
		}
	})
}
