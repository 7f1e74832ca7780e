package bulwark

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// EventKind names what happened in an [Event]. Its values are the
// documented event names, such as "circuit:opened"; compare a kind with the
// constants below.
type EventKind string

// The kinds of [Event] the layers emit.
const (
	// CircuitOpened: the breaker moved to OPEN (From and To are set).
	CircuitOpened EventKind = "circuit:opened"
	// CircuitHalfOpen: the breaker moved to HALF_OPEN and admits probes.
	CircuitHalfOpen EventKind = "circuit:half-open"
	// CircuitClosed: the breaker moved to CLOSED.
	CircuitClosed EventKind = "circuit:closed"
	// RequestSuccess: a call through the breaker succeeded.
	RequestSuccess EventKind = "request:success"
	// RequestFailure: a call through the breaker failed and counted
	// against the circuit.
	RequestFailure EventKind = "request:failure"
	// RequestRejected: the breaker refused a call without running it.
	RequestRejected EventKind = "request:rejected"
	// FallbackUsed: a failed call was answered with a cached value.
	FallbackUsed EventKind = "fallback:used"
	// RetryAttempt: an attempt failed and another one follows after a wait.
	RetryAttempt EventKind = "retry:attempt"
	// RetryExhausted: retry gave up; the call returns an error.
	RetryExhausted EventKind = "retry:exhausted"
	// IdempotencyReplayed: a stored result was returned instead of
	// running the operation again.
	IdempotencyReplayed EventKind = "idempotency:replayed"
	// IdempotencyConflict: a duplicate met a call that holds the key, or
	// the key was reused with a different payload.
	IdempotencyConflict EventKind = "idempotency:conflict"
	// IdempotencyForgotten: a stored result was deleted because the
	// operation's effects were undone (a workflow rolled back the step);
	// the next execution runs under a new generation of the key. It is not
	// a compensation: the undo itself reports rollback:compensated.
	IdempotencyForgotten EventKind = "idempotency:forgotten"
	// RollbackCompensated: a compensation ran successfully.
	RollbackCompensated EventKind = "rollback:compensated"
	// RollbackFailed: a compensation failed after its retries.
	RollbackFailed EventKind = "rollback:failed"
	// BulkheadRejected: a bulkhead refused a call because all its slots
	// and its wait queue were taken, or the call could not get a slot in
	// time (Duration is how long it waited).
	BulkheadRejected EventKind = "bulkhead:rejected"
	// RateLimitRejected: a rate limiter refused a call that could not get
	// a token in time (Duration is the wait it would have needed).
	RateLimitRejected EventKind = "ratelimit:rejected"
	// RateLimitPaused: a rate limiter was paused, so every call waits
	// (Duration is the pause, such as a Retry-After).
	RateLimitPaused EventKind = "ratelimit:paused"
)

// String returns the kind's name, such as "circuit:opened".
func (k EventKind) String() string { return string(k) }

// Event describes one thing a layer saw. One struct serves every layer so
// that a single [Listener] can watch the whole stack; fields that do not
// apply to a kind are left zero.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Executor is the name of the executor (remote service) or breaker
	// the event belongs to; empty when the layer was built without one.
	Executor string
	// Time is when the event happened.
	Time time.Time
	// Err is the error involved: the call's error for request:failure,
	// retry and fallback events, the service's final answer for a
	// request:success that ended with one (bulwark.ErrFinal), the
	// compensation's error for rollback:failed, the rejection for
	// request:rejected.
	Err error
	// Duration is the call's latency for request:success and
	// request:failure, the wait before the next attempt for
	// retry:attempt, the age of the served value for fallback:used, and
	// the time a compensation took for rollback events.
	Duration time.Duration
	// Attempt is the 1-based number of the attempt that just failed for
	// retry:attempt, the number of attempts made for retry:exhausted, and
	// the number of attempts a compensation took for rollback events.
	Attempt int
	// From and To are the states of a circuit change ("CLOSED", "OPEN",
	// "HALF_OPEN"); empty for other kinds.
	From, To string
	// Key is the idempotency key for idempotency events.
	Key string
	// Step is the compensation's name for rollback events.
	Step string
	// Seq is a per-source sequence number of state-change events: a
	// breaker numbers its circuit events 1, 2, 3, ... with no gaps, so a
	// listener can put events that raced on different goroutines back in
	// order (each event's From is the To of the one numbered before it).
	// Zero for events that are not state changes.
	Seq uint64
	// Detail holds layer-specific data, documented by the layer that
	// emits the event (the breaker puts a snapshot of its statistics on
	// circuit events); nil otherwise.
	Detail any
	// Context is the context of the call the event belongs to, for trace
	// and span correlation (an OpenTelemetry span, a request ID): the
	// caller's context for request, retry, fallback, idempotency,
	// rejection and bulkhead/rate-limit events, the call's that caused a
	// circuit change, the workflow scope's for rollback events. It is nil
	// for events no call caused (Reset, ForceOpen, a timer). A listener
	// may read values from it and pass it to a logger or tracer; it must
	// not keep it after returning, nor treat its cancellation as its own.
	// Setting it costs nothing: events are built only while someone
	// listens.
	Context context.Context
	// Operation is the name of the call's operation, set by the pipeline
	// from its Operation call option (Do and Execute); empty otherwise.
	Operation string
	// Sampled is true on the request:success and request:failure events
	// of a call in the breaker's latency sample, false on every other
	// event. The breaker measures about one call in 64 per stripe (a
	// shard of its counters; see breaker.Config.OnSample): the call
	// made when the stripe's count of successes is 63 modulo 64, so
	// successes are sampled at that rate and a failure is sampled when
	// it happens at that count (on average one in 64 too, but in clumps:
	// failures do not move the count). A sample's count is therefore not the
	// call count: read the exact counts from the breaker's Stats
	// (Successes, Failures, Rejections). A full listener (OnEvent, Stack
	// Subscribe) gets every event with Sampled set on the sampled ones;
	// a sampled listener (breaker Config.OnSample, Stack.SubscribeSampled)
	// gets only the sampled ones. Precedent: the Go runtime times a
	// sample of goroutine transitions (one in gTrackingPeriod = 8; see
	// casgstatus in runtime/proc.go) for its /sched/latencies:seconds
	// histogram, because timing every one would cost too much.
	Sampled bool
}

// Listener receives events. Layers call it synchronously on the goroutine
// of the call that caused the event, never while holding a lock, so a
// Listener may call back into the layer (read its state or statistics). A
// Listener shared by several calls must be safe for concurrent use and
// should return quickly: the call waits for it.
//
// A nil Listener means no events; a layer without a Listener does not build
// events at all and pays no allocation for them.
type Listener func(Event)

// String describes the event in one line, for logs and first listeners:
// kind, executor and operation, then the fields that are set, e.g.
// "retry:attempt notion get-page attempt=1 duration=500ms err=\"503\"". It does not
// print Context or Detail.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(string(e.Kind))
	for _, s := range []string{e.Executor, e.Operation} {
		if s != "" {
			b.WriteByte(' ')
			b.WriteString(s)
		}
	}
	if e.From != "" || e.To != "" {
		b.WriteString(" " + e.From + "->" + e.To)
	}
	if e.Attempt != 0 {
		b.WriteString(" attempt=" + strconv.Itoa(e.Attempt))
	}
	if e.Duration != 0 {
		b.WriteString(" duration=" + e.Duration.String())
	}
	if e.Key != "" {
		b.WriteString(" key=" + e.Key)
	}
	if e.Step != "" {
		b.WriteString(" step=" + strconv.Quote(e.Step))
	}
	if e.Err != nil {
		b.WriteString(" err=" + strconv.Quote(e.Err.Error()))
	}
	return b.String()
}
