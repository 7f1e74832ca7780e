package breaker

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

// Issue 14, item 11(a): circuit events of changes that race on different
// goroutines (Reset against failures) can reach the listener out of
// order. The decision: each is still delivered on the goroutine that made
// it, after the lock is released, and carries Event.Seq, numbered 1, 2,
// 3, ... per breaker in the order the changes were made. Sorted by Seq,
// the events chain: each one's From is the previous one's To.

func circuitEvents(events []bulwark.Event) []bulwark.Event {
	var out []bulwark.Event
	for _, e := range events {
		if e.Seq != 0 {
			out = append(out, e)
		}
	}
	return out
}

// requireChain checks that events, sorted by Seq, are numbered 1..n with
// no gap and chain from CLOSED, and that they end in state.
func requireChain(t *testing.T, events []bulwark.Event, state State) {
	t.Helper()
	slices.SortFunc(events, func(a, b bulwark.Event) int { return int(a.Seq) - int(b.Seq) })
	prev := Closed.String()
	for i, e := range events {
		require.Equal(t, uint64(i+1), e.Seq, "Seq numbers every change once, without gaps")
		require.Equal(t, prev, e.From, "event %d (%s %s->%s) does not chain", e.Seq, e.Kind, e.From, e.To)
		require.Equal(t, eventKinds[stateOf(t, e.To)], e.Kind)
		prev = e.To
	}
	require.Equal(t, state.String(), prev, "the last event's To is the final state")
}

func stateOf(t *testing.T, s string) State {
	for _, st := range []State{Closed, Open, HalfOpen} {
		if st.String() == s {
			return st
		}
	}
	t.Fatalf("unknown state %q", s)
	return 0
}

func TestSeqNumbersCircuitEvents(t *testing.T) {
	rec := &recorder{}
	b := newBreakerT(t, Config{FailureThreshold: 1, OnEvent: rec.listen})
	fail(b)
	b.Reset()
	b.Reset() // no change: no event, no number
	b.ForceOpen()
	b.ForceOpen()
	b.Reset()
	var seqs []uint64
	for _, e := range rec.all() {
		if e.From == "" {
			assert.Zero(t, e.Seq, "request events are not numbered")
			continue
		}
		seqs = append(seqs, e.Seq)
	}
	assert.Equal(t, []uint64{1, 2, 3, 4}, seqs)
	requireChain(t, circuitEvents(rec.all()), Closed)
}

func TestSeqOrdersRacingResetAndFailures(t *testing.T) {
	var (
		mu     sync.Mutex
		events []bulwark.Event
	)
	var b *Breaker
	b = newBreakerT(t, Config{FailureThreshold: 1, RequestTimeout: -1, OnEvent: func(e bulwark.Event) {
		if e.Seq == 0 {
			return
		}
		_ = b.State() // listeners may call back: no lock is held
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range 3000 {
				switch {
				case g%2 == 0:
					b.Reset()
				case g == 1 && i%100 == 0:
					b.ForceOpen()
				default:
					Do(context.Background(), b, func(context.Context) (int, error) { return 0, errBoom })
				}
				runtime.Gosched()
			}
		}()
	}
	close(start)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, events)
	inOrder := slices.IsSortedFunc(events, func(a, b bulwark.Event) int { return int(a.Seq) - int(b.Seq) })
	t.Logf("%d circuit events, delivered in order: %v", len(events), inOrder)
	requireChain(t, events, b.State())
	assert.Equal(t, uint64(len(events)), b.seq)
}
