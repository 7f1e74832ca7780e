package pipeline

import (
	"slices"

	"github.com/bulwark-go/bulwark"
)

type subscriber struct {
	id uint64
	fn bulwark.Listener
}

// Subscribe registers listener to receive the events of every layer of
// every executor, with Event.Executor set to the executor's name, and
// returns a function that cancels the subscription (calling it again does
// nothing). A nil listener is ignored.
//
// Listeners are called synchronously on the goroutine of the call that
// caused the event, never under a lock, in the order they subscribed;
// they must be safe for concurrent use and should return quickly. While
// nobody listens (no subscriber, no listener in the layer's own config),
// the breaker, fallback, retry and rollback layers build no events and
// read no clock for them; subscribing or cancelling the last subscription
// rebuilds them, keeping their state.
func (s *Stack) Subscribe(listener bulwark.Listener) (cancel func()) {
	if s == nil || listener == nil {
		return func() {}
	}
	s.mu.Lock()
	s.nextSub++
	id := s.nextSub
	var next []subscriber
	if cur := s.listeners.Load(); cur != nil {
		next = slices.Clone(*cur)
	}
	next = append(next, subscriber{id: id, fn: listener})
	s.listeners.Store(&next)
	if len(next) == 1 {
		s.rewireLocked()
	}
	s.mu.Unlock()

	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		cur := s.listeners.Load()
		if cur == nil {
			return
		}
		i := slices.IndexFunc(*cur, func(sub subscriber) bool { return sub.id == id })
		if i < 0 {
			return
		}
		next := slices.Delete(slices.Clone(*cur), i, i+1)
		s.listeners.Store(&next)
		if len(next) == 0 {
			s.rewireLocked()
		}
	}
}

// hasListeners reports whether anyone subscribed.
func (s *Stack) hasListeners() bool {
	l := s.listeners.Load()
	return l != nil && len(*l) > 0
}

// publish delivers ev to every subscriber.
func (s *Stack) publish(ev bulwark.Event) {
	l := s.listeners.Load()
	if l == nil {
		return
	}
	for _, sub := range *l {
		sub.fn(ev)
	}
}

// rewireLocked gives every layer whose events cost something a listener,
// or takes it away, after the first subscriber came or the last one left.
// The layers keep their state.
func (s *Stack) rewireLocked() {
	m := s.execs.Load()
	if m == nil {
		return
	}
	for _, e := range *m {
		// The configuration was validated when it was given, and its
		// layers were built from it once already.
		_ = e.rewireLocked()
	}
}
