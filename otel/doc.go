// Package otel records the events of a [pipeline.Stack] as OpenTelemetry
// metrics and span events.
//
// [Instrument] subscribes to the Stack's events ([pipeline.Stack.Subscribe])
// and registers these instruments with a Meter named after this package
// (the instrumentation scope "github.com/bulwark-go/bulwark/otel"):
//
//	name                         instrument  unit            attributes          from
//	bulwark.calls                counter     {call}          executor, outcome   request:success, request:failure, request:rejected
//	bulwark.call.duration        histogram   s               executor, outcome   request:success, request:failure (Event.Duration)
//	bulwark.circuit.state        gauge       {state}         executor            Stack.Stats(), read at collection
//	bulwark.circuit.opens        counter     {transition}    executor            Stack.Stats() (TimesOpened), read at collection
//	bulwark.retry.attempts       counter     {attempt}       executor            retry:attempt
//	bulwark.retry.exhausted      counter     {call}          executor            retry:exhausted
//	bulwark.rejections           counter     {call}          executor, layer     request:rejected, bulkhead:rejected, ratelimit:rejected
//	bulwark.fallback.served      counter     {call}          executor            fallback:used
//	bulwark.idempotency.replays  counter     {call}          executor            idempotency:replayed
//	bulwark.compensations        counter     {compensation}  executor, result    rollback:compensated, rollback:failed
//
// The histogram is a Float64Histogram, recorded on every call with the
// call's context (so an exemplar can point at its trace). The counters
// are Int64ObservableCounters and the gauge an Int64ObservableGauge: an
// event adds to an atomic count of its executor, and one callback reports
// the counts, and reads Stack.Stats() for the circuit, when the
// MeterProvider collects. A counter's series appears with its first
// event.
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
// instrumented count: the counters start at zero at Instrument.
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
// TracerProvider is needed: the spans are the caller's.
//
// Config.NoEvents reports only what Stack.Stats() can give (calls,
// breaker rejections, fallbacks, replays, the circuit), read at
// collection, without subscribing: no cost per call, but no histogram,
// retry or compensation series and no span events.
//
// Cost. Subscribing makes every layer build its events, and the breaker
// read the clock twice on every call (see pipeline.Stack.Subscribe).
// Recording a success is one atomic add and one histogram Record with an
// attribute set made once per executor; the other counters are one atomic
// add; nothing is allocated by this package. The histogram Record is most
// of the cost (the SDK's aggregation); see the benchmarks in
// bench_test.go and docs/operations.md.
package otel
