// Package prometheus exposes the events and statistics of a
// [pipeline.Stack] as Prometheus metrics: [NewCollector] returns a
// [Collector] (a client_golang prometheus.Collector) to register with a
// Registry and serve with promhttp.
//
// The series are those of the OpenTelemetry module
// (github.com/bulwark-go/bulwark/otel), named the way the OpenTelemetry
// Prometheus exporter names them (TestSameSeriesAsOTel checks names,
// types, labels and values against that exporter):
//
//	name                                 type       labels              from
//	bulwark_calls_total                  counter    executor, outcome   Stack.Stats() (breaker Successes, Failures, Rejections), read at scrape
//	bulwark_call_duration_seconds        histogram  executor, outcome   sampled request:success, request:failure (Event.Duration): about 1 call in 64
//	bulwark_circuit_state                gauge      executor            Stack.Stats(), read at scrape
//	bulwark_circuit_opens_total          counter    executor            Stack.Stats() (TimesOpened), read at scrape
//	bulwark_retry_attempts_total         counter    executor            retry:attempt
//	bulwark_retry_exhausted_total        counter    executor            retry:exhausted
//	bulwark_rejections_total             counter    executor, layer     Stack.Stats() (breaker), bulkhead:rejected, ratelimit:rejected
//	bulwark_fallback_served_total        counter    executor            fallback:used
//	bulwark_idempotency_replays_total    counter    executor            idempotency:replayed
//	bulwark_compensations_total          counter    executor, result    rollback:compensated, rollback:failed
//	bulwark_bulkhead_in_flight           gauge      executor            Stack.Stats() (Bulkhead.InFlight), read at scrape
//	bulwark_bulkhead_limit               gauge      executor            Stack.Stats() (Bulkhead.MaxConcurrent), read at scrape
//	bulwark_bulkhead_waiting             gauge      executor            Stack.Stats() (Bulkhead.Waiting), read at scrape
//	bulwark_ratelimit_pause_remaining_seconds  gauge  executor          Stack.Stats() (RateLimit.PausedUntil - now, 0 when not paused), read at scrape
//	bulwark_ratelimit_delayed_total      counter    executor            Stack.Stats() (RateLimit.Delayed), read at scrape
//	bulwark_retry_budget_refused_total   counter    executor            Stack.Stats() (RetryBudget.Refused), read at scrape
//
// The load layers' series (the last six: bulkhead slots in use, its
// limit and its queue, the seconds left of a rate limiter's pause, the
// calls the limiter delayed, the retries the retry budget refused) are
// read from Stack.Stats() at every scrape, with or without
// Config.NoEvents, and cost the calls nothing. An executor has them only
// when it has the layer (the retry budget: a Retry config with a Budget),
// and then always, zeros included; the counters count since the layer
// was made.
//
// Label values: outcome is "success", "failure" or "rejected" (the
// histogram has no "rejected": a rejected call did not run); layer is
// "breaker", "bulkhead" or "ratelimit"; result is "compensated" or
// "failed". bulwark_circuit_state is 0 for CLOSED, 1 for HALF_OPEN and 2
// for OPEN (forced open included); an executor without a breaker has no
// circuit series. No label holds a key, an operation or an error message.
//
// The counters that come from events count from [NewCollector] on, through
// a subscription to the Stack ([pipeline.Stack.SubscribeSampled]); a
// series appears with its first count. The calls, the breaker's
// rejections and the circuit series are read from Stack.Stats() at every
// scrape: exact, counted since the executor's breaker was made. The
// histogram holds a sample of the calls, about 1 in 64 (the breaker's
// latency sample, see breaker.Config.OnSample): its count is not the call
// count, use bulwark_calls_total for rates; Config.AllDurations observes
// every call instead, at a cost on every call. What a call is: the calls, outcomes and
// durations come from the circuit breaker, which sees each logical call
// once (retries happen inside it), so only executors with a breaker have
// them; see the otel package for the details.
//
// Config.NoEvents reports only what Stack.Stats() can give (calls,
// breaker rejections, fallbacks, replays, the circuit, the load layers),
// read at scrape,
// without subscribing: no cost per call, but no histogram and no retry or
// compensation series.
//
// Cost: the default subscription leaves the breaker's allocation-free fast
// path as it is; one call in 64 builds an event and is observed in the
// histogram (series looked up once per executor, no allocation). With
// AllDurations every call takes the breaker's listener path (two clock
// reads and an event) and an observation.
package prometheus
