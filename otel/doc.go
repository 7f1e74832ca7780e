// Package otel records the events of a [pipeline.Stack] as OpenTelemetry
// metrics and span events.
//
// [Instrument] subscribes to the Stack's events
// ([pipeline.Stack.SubscribeSampled]) and registers these instruments with
// a Meter named after this package (the instrumentation scope
// "github.com/bulwark-go/bulwark/otel"):
//
//	name                         instrument  unit            attributes          from
//	bulwark.calls                counter     {call}          executor, outcome   Stack.Stats() (breaker Successes, Failures, Rejections), read at collection
//	bulwark.call.duration        histogram   s               executor, outcome   sampled request:success, request:failure (Event.Duration): about 1 call in 64
//	bulwark.circuit.state        gauge       {state}         executor            Stack.Stats(), read at collection
//	bulwark.circuit.opens        counter     {transition}    executor            Stack.Stats() (TimesOpened), read at collection
//	bulwark.retry.attempts       counter     {attempt}       executor            retry:attempt
//	bulwark.retry.exhausted      counter     {call}          executor            retry:exhausted
//	bulwark.rejections           counter     {call}          executor, layer     Stack.Stats() (breaker), bulkhead:rejected, ratelimit:rejected
//	bulwark.fallback.served      counter     {call}          executor            fallback:used
//	bulwark.idempotency.replays  counter     {call}          executor            idempotency:replayed
//	bulwark.compensations        counter     {compensation}  executor, result    rollback:compensated, rollback:failed
//	bulwark.bulkhead.in_flight   gauge       {call}          executor            Stack.Stats() (Bulkhead.InFlight), read at collection
//	bulwark.bulkhead.limit       gauge       {call}          executor            Stack.Stats() (Bulkhead.MaxConcurrent), read at collection
//	bulwark.bulkhead.waiting     gauge       {call}          executor            Stack.Stats() (Bulkhead.Waiting), read at collection
//	bulwark.ratelimit.pause.remaining  gauge  s              executor            Stack.Stats() (RateLimit.PausedUntil - now, 0 when not paused), read at collection
//	bulwark.ratelimit.delayed    counter     {call}          executor            Stack.Stats() (RateLimit.Delayed), read at collection
//	bulwark.retry.budget.refused counter     {retry}         executor            Stack.Stats() (RetryBudget.Refused), read at collection
//
// The load layers' series (the last six) describe the state of an
// executor's bulkhead, rate limiter and retry budget. They are read from
// Stack.Stats() when the MeterProvider collects, with or without
// Config.NoEvents, and cost the calls nothing. An executor has them only
// when it has the layer (the retry budget: a Retry config with a Budget),
// and then always, zeros included: a bulkhead filling up is
// bulwark.bulkhead.in_flight reaching bulwark.bulkhead.limit, a paused
// limiter is bulwark.ratelimit.pause.remaining > 0 (a Float64
// ObservableGauge: the seconds left of the pause when collected). The
// counters count since the layer was made.
//
// The histogram is a Float64Histogram, recorded with the call's context
// (so an exemplar can point at its trace) for a sample of the calls: the
// calls the breaker measures for Stats.MeanLatency, about 1 call in 64 per
// stripe (see breaker.Config.OnSample and bulwark.Event.Sampled). Its
// count is not the call count: use bulwark.calls for rates; its quantiles
// and mean estimate those of all calls. Timing every call would cost every
// call (the breaker's listener path and the SDK's Record: about +300 ns
// per call on the machine of docs/operations.md); Config.AllDurations
// does that, subscribing with [pipeline.Stack.Subscribe]. The default
// keeps the breaker's allocation-free fast path, so a CLOSED success
// costs a few nanoseconds more than without metrics.
//
// The counters are Int64ObservableCounters and the circuit gauge an
// Int64ObservableGauge, reported by one callback when the MeterProvider
// collects: bulwark.calls, the breaker's rejections and the circuit
// series are read from Stack.Stats() then (exact, counted since the
// executor's breaker was made); the other counters are atomic counts of
// their executor that the events add to (counted from Instrument). A
// counter's series appears with its first count.
//
// Attribute values: executor is the executor's name; outcome is "success",
// "failure" or "rejected" (bulwark.call.duration has no "rejected": a
// rejected call did not run); layer is "breaker", "bulkhead" or
// "ratelimit"; result is "compensated" or "failed". No attribute ever
// holds an idempotency key, an operation name or an error message: the
// series stay few (executors × a handful). bulwark.circuit.state is 0 for
// CLOSED, 1 for HALF_OPEN and 2 for OPEN (forced open included), ordered
// by severity, so "> 0" means "not closed"; an executor without a breaker
// has no series.
//
// The names are those of the Prometheus Collector of
// github.com/bulwark-go/bulwark/prometheus once translated the way the
// OpenTelemetry Prometheus exporter translates them (bulwark.calls with
// unit {call} becomes bulwark_calls_total, bulwark.call.duration with unit
// s becomes bulwark_call_duration_seconds), and the attributes are not
// namespaced for the same reason: either path gives the same series.
//
// What a call is. The calls, their outcome and their duration come from
// the circuit breaker, which sees each logical call once (retries happen
// inside it): bulwark.calls counts the executors that have a breaker.
// Calls the breaker counts neither way (cancelled by the caller, refused
// by an inner layer) are not counted; a call answered from the fallback
// cache counts as the failure or rejection it was, and again in
// bulwark.fallback.served, so the fallback ratio is
// bulwark.fallback.served / bulwark.calls. Only events that happen while
// instrumented count in the event counters (retries, fallbacks, ...):
// they start at zero at Instrument.
//
// Span events. For every event but request:success and request:failure
// (the call's own span reports its outcome), Instrument adds an event to
// the span of the event's context (trace.SpanFromContext(Event.Context)),
// when that span is recording: the call's active span, so that a retry
// storm is visible on the request's trace. Event names are "bulwark." and
// the event kind with ':' replaced by '.' (bulwark.retry.attempt,
// bulwark.request.rejected, bulwark.circuit.opened,
// bulwark.idempotency.replayed, bulwark.rollback.failed, ...); their
// attributes are namespaced, as span attributes share one space:
// bulwark.executor, bulwark.operation, bulwark.attempt, bulwark.wait
// (seconds), bulwark.fallback.age (seconds), bulwark.circuit.from and
// bulwark.circuit.to, bulwark.idempotency.key, bulwark.step, bulwark.layer
// and error.message, each where the event sets it. A span event may hold
// a key or an error message: it belongs to one trace. Circuit changes that
// no call caused (Reset, ForceOpen) have no span to go to. No
// TracerProvider is needed: the spans are the caller's. The breaker's own
// rejections (bulwark.request.rejected) are span events only with
// Config.AllDurations: the sampled subscription does not get them, so that
// a rejection stays as cheap as without metrics (a fallback's
// bulwark.fallback.used event still carries the rejection's error).
//
// Config.NoEvents reports only what Stack.Stats() can give (calls,
// breaker rejections, fallbacks, replays, the circuit, the load layers),
// read at collection, without subscribing: no cost per call, but no histogram,
// retry or compensation series and no span events.
//
// Cost. The default subscription leaves the breaker's fast path as it is;
// one call in 64 builds an event and records it (one histogram Record
// with an attribute set made once per executor, most of it the SDK's
// aggregation). With AllDurations every call takes the breaker's listener
// path (two clock reads and an event) and the Record. The other counters
// are one atomic add per event; nothing is allocated by this package. See
// the benchmarks in bench_test.go and docs/operations.md.
package otel
