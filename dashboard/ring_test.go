package dashboard

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwark-go/bulwark"
)

func kinds(evs []bulwark.Event) []bulwark.EventKind {
	out := make([]bulwark.EventKind, len(evs))
	for i, ev := range evs {
		out[i] = ev.Kind
	}
	return out
}

// A flood of rejections does not push the circuit:opened that explains it
// off the list: state changes stay while routine events take the room
// left, in arrival order, newest first.
func TestRingKeepsStateChangesThroughAFlood(t *testing.T) {
	r := newRing(4)
	r.add(bulwark.Event{Kind: bulwark.RequestFailure})
	r.add(bulwark.Event{Kind: bulwark.CircuitOpened})
	for range 100 {
		r.add(bulwark.Event{Kind: bulwark.RequestRejected})
	}
	r.add(bulwark.Event{Kind: bulwark.RollbackFailed})
	r.add(bulwark.Event{Kind: bulwark.BulkheadRejected})
	assert.Equal(t, []bulwark.EventKind{
		bulwark.BulkheadRejected, bulwark.RollbackFailed, bulwark.RequestRejected, bulwark.CircuitOpened,
	}, kinds(r.latest()))

	// More state changes than room: the newest of them.
	for range 5 {
		r.add(bulwark.Event{Kind: bulwark.CircuitHalfOpen})
	}
	assert.Equal(t, []bulwark.EventKind{
		bulwark.CircuitHalfOpen, bulwark.CircuitHalfOpen, bulwark.CircuitHalfOpen, bulwark.CircuitHalfOpen,
	}, kinds(r.latest()))
}

// Without state changes the ring is a plain ring of the newest events.
func TestRingRoutineOnly(t *testing.T) {
	r := newRing(3)
	assert.Empty(t, r.latest())
	for _, k := range []bulwark.EventKind{bulwark.RetryAttempt, bulwark.RequestFailure, bulwark.FallbackUsed, bulwark.RetryExhausted} {
		r.add(bulwark.Event{Kind: k})
	}
	assert.Equal(t, []bulwark.EventKind{bulwark.RetryExhausted, bulwark.FallbackUsed, bulwark.RequestFailure}, kinds(r.latest()))
}
