package pipeline

import (
	"slices"

	"github.com/bulwark-go/bulwark"
)

type subscriber struct {
	id      uint64
	fn      bulwark.Listener
	sampled bool // SubscribeSampled: the breaker's per-request events of its sample only
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
//
// Cost: a subscriber makes the breaker report every call, which takes it
// off its fast path: each call reads the clock twice and builds an event,
// and then waits for the listener (see docs/operations.md for the
// numbers). For metrics that need only a sample of the durations,
// [Stack.SubscribeSampled] keeps the fast path.
func (s *Stack) Subscribe(listener bulwark.Listener) (cancel func()) {
	return s.subscribe(listener, false)
}

// SubscribeSampled is [Stack.Subscribe] for a listener that needs the
// breaker's per-request events only for a sample of the calls, such as a
// duration histogram: the breaker's request:success and request:failure
// events reach it only for the calls in the breaker's latency sample
// (Event.Sampled is true: about one call in 64 per stripe, see
// breaker.Config.OnSample), and its request:rejected events not at all.
// Every other event of every layer (circuit changes, retries, bulkhead
// and rate-limit rejections, fallbacks, idempotency and rollback events)
// reaches it in full, as with Subscribe. The sampled events are not the
// call count: Stats has the exact counts of calls, outcomes and breaker
// rejections.
//
// While only sampled subscribers listen, the breaker gets its OnSample
// listener and not OnEvent, so a CLOSED success keeps the breaker's fast
// path: allocation-free, and without a clock read for 63 calls in 64.
// When a full subscriber (Subscribe) listens too, or the breaker has a
// listener of its own in its Config, or the stack's Logger records Debug
// events, the breaker reports every call and the sampled subscribers get
// only the events marked Sampled. Subscribing and cancelling rebuild the
// layers when that choice changes, keeping their state. Delivery, order
// and cancellation are as with Subscribe; a nil listener is ignored.
func (s *Stack) SubscribeSampled(listener bulwark.Listener) (cancel func()) {
	return s.subscribe(listener, true)
}

func (s *Stack) subscribe(listener bulwark.Listener, sampled bool) (cancel func()) {
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
	before := s.listening()
	next = append(next, subscriber{id: id, fn: listener, sampled: sampled})
	s.listeners.Store(&next)
	if s.listening() != before {
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
		before := s.listening()
		next := slices.Delete(slices.Clone(*cur), i, i+1)
		s.listeners.Store(&next)
		if s.listening() != before {
			s.rewireLocked()
		}
	}
}

// How the stack's subscribers listen, which decides the breaker's
// listener (see executor.breakerConfig).
const (
	listenNone    = iota // no subscriber
	listenSampled        // only sampled subscribers: the breaker's OnSample
	listenFull           // at least one full subscriber: the breaker's OnEvent
)

// listening returns how the subscribers listen: listenNone, listenSampled
// or listenFull.
func (s *Stack) listening() int {
	l := s.listeners.Load()
	if l == nil || len(*l) == 0 {
		return listenNone
	}
	for _, sub := range *l {
		if !sub.sampled {
			return listenFull
		}
	}
	return listenSampled
}

// hasListeners reports whether anyone subscribed, in full or sampled.
func (s *Stack) hasListeners() bool {
	l := s.listeners.Load()
	return l != nil && len(*l) > 0
}

// publish delivers ev to every subscriber that wants it.
func (s *Stack) publish(ev bulwark.Event) {
	l := s.listeners.Load()
	if l == nil {
		return
	}
	for _, sub := range *l {
		if sub.sampled && !forSampled(ev) {
			continue
		}
		sub.fn(ev)
	}
}

// forSampled reports whether a sampled subscriber gets ev: every event
// but the breaker's per-request ones outside its sample.
func forSampled(ev bulwark.Event) bool {
	switch ev.Kind {
	case bulwark.RequestSuccess, bulwark.RequestFailure:
		return ev.Sampled
	case bulwark.RequestRejected:
		return false
	}
	return true
}

// rewireLocked gives every layer whose events cost something a listener,
// or takes it away, after the way the subscribers listen changed (the
// first subscriber came or the last left, the first full one came or the
// last full one left: see listening). The layers keep their state.
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
