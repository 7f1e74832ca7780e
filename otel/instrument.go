package otel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/internal/metricdef"
	"github.com/bulwark-go/bulwark/pipeline"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Instrumentation is the OpenTelemetry instrumentation of one Stack, made
// by [Instrument]. It is safe for concurrent use.
//
// The counters are observable: bulwark.calls and the breaker's
// rejections are read from Stack.Stats() when the MeterProvider collects,
// with the circuit state; the other counters are atomic counts of their
// executor that an event adds to. Only the duration histogram is recorded
// on the call's goroutine, for the breaker's sample of the calls (every
// call with Config.AllDurations).
type Instrumentation struct {
	stack      *pipeline.Stack
	spanEvents bool
	noEvents   bool // read the counters from Stats; no subscription

	duration     metric.Float64Histogram
	calls        metric.Int64ObservableCounter
	retries      metric.Int64ObservableCounter
	exhausted    metric.Int64ObservableCounter
	rejections   metric.Int64ObservableCounter
	fallback     metric.Int64ObservableCounter
	replays      metric.Int64ObservableCounter
	compensation metric.Int64ObservableCounter
	state        metric.Int64ObservableGauge
	opens        metric.Int64ObservableCounter
	load         loadInstruments

	mu    sync.Mutex                       // serializes adding executors and Close
	execs atomic.Pointer[map[string]*exec] // copy on write
	reg   metric.Registration
	stop  func() // the Stack subscription; nil once closed
}

// exec holds the counts of one executor and its measurement options, made
// once: recording passes a ready slice, so it allocates nothing.
type exec struct {
	retries, exhausted          atomic.Int64
	bulkhead, limiter           atomic.Int64
	fallback, replays           atomic.Int64
	compensated, failed         atomic.Int64
	durSuccess, durFailure      []metric.RecordOption
	oSuccess, oFailure, oReject []metric.ObserveOption
	oBreaker, oBulkhead, oLimit []metric.ObserveOption
	oCompensated, oFailed       []metric.ObserveOption
	oExec                       []metric.ObserveOption
	span                        attribute.KeyValue // bulwark.executor
}

func newExec(executor string) *exec {
	e := attribute.String("executor", executor)
	obs := func(kvs ...attribute.KeyValue) []metric.ObserveOption {
		return []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(kvs...))}
	}
	rec := func(kvs ...attribute.KeyValue) []metric.RecordOption {
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kvs...))}
	}
	return &exec{
		durSuccess:   rec(e, attribute.String("outcome", "success")),
		durFailure:   rec(e, attribute.String("outcome", "failure")),
		oSuccess:     obs(e, attribute.String("outcome", "success")),
		oFailure:     obs(e, attribute.String("outcome", "failure")),
		oReject:      obs(e, attribute.String("outcome", "rejected")),
		oBreaker:     obs(e, attribute.String("layer", "breaker")),
		oBulkhead:    obs(e, attribute.String("layer", "bulkhead")),
		oLimit:       obs(e, attribute.String("layer", "ratelimit")),
		oCompensated: obs(e, attribute.String("result", "compensated")),
		oFailed:      obs(e, attribute.String("result", "failed")),
		oExec:        obs(e),
		span:         attribute.String("bulwark.executor", executor),
	}
}

// Instrument records the events and statistics of stack as metrics, and
// events as span events on the calls' spans unless cfg.NoSpanEvents (see
// the package documentation for the instruments and events). It
// subscribes to stack at once (with pipeline.Stack.SubscribeSampled, or
// Subscribe with cfg.AllDurations, or not at all with cfg.NoEvents) and
// registers a callback that reads stack.Stats() when the MeterProvider
// collects; [Instrumentation.Close] undoes both.
//
// Errors wrap [ErrInvalid] for a nil stack or DurationBuckets that are not
// increasing, or are the MeterProvider's when it refuses an instrument.
func Instrument(stack *pipeline.Stack, cfg Config) (*Instrumentation, error) {
	if stack == nil {
		return nil, fmt.Errorf("%w: stack is nil", ErrInvalid)
	}
	buckets, why := metricdef.Buckets(cfg.DurationBuckets)
	if why != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, why)
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	in := &Instrumentation{stack: stack, spanEvents: !cfg.NoSpanEvents, noEvents: cfg.NoEvents}
	empty := map[string]*exec{}
	in.execs.Store(&empty)

	var errs []error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	in.calls = counter("bulwark.calls", "{call}", "Calls through an executor's circuit breaker, by outcome (success, failure, rejected).")
	in.retries = counter("bulwark.retry.attempts", "{attempt}", "Failed attempts that were followed, after a wait, by another attempt.")
	in.exhausted = counter("bulwark.retry.exhausted", "{call}", "Calls whose retries gave up.")
	in.rejections = counter("bulwark.rejections", "{call}", "Calls refused without running, by the layer that refused (breaker, bulkhead, ratelimit).")
	in.fallback = counter("bulwark.fallback.served", "{call}", "Failed or rejected calls answered with a cached value.")
	in.replays = counter("bulwark.idempotency.replays", "{call}", "Calls answered with the stored result of an idempotent operation instead of running again.")
	in.compensation = counter("bulwark.compensations", "{compensation}", "Compensations (undo actions) run, by result (compensated, failed).")
	var err error
	in.duration, err = m.Float64Histogram("bulwark.call.duration",
		metric.WithUnit("s"),
		metric.WithDescription(metricdef.DurationHelp(cfg.AllDurations)),
		metric.WithExplicitBucketBoundaries(buckets...))
	errs = append(errs, err)
	in.state, err = m.Int64ObservableGauge("bulwark.circuit.state",
		metric.WithUnit("{state}"),
		metric.WithDescription("State of the executor's circuit: 0 closed, 1 half-open, 2 open."))
	errs = append(errs, err)
	in.opens, err = m.Int64ObservableCounter("bulwark.circuit.opens",
		metric.WithUnit("{transition}"),
		metric.WithDescription("Times the executor's circuit opened since its breaker was made."))
	errs = append(errs, err)
	in.load, err = newLoadInstruments(m)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	in.reg, err = m.RegisterCallback(in.observe, append([]metric.Observable{in.calls, in.retries, in.exhausted, in.rejections,
		in.fallback, in.replays, in.compensation, in.state, in.opens}, in.load.observables()...)...)
	if err != nil {
		return nil, err
	}
	in.stop = metricdef.Subscribe(stack, cfg.NoEvents, cfg.AllDurations, in.handle)
	return in, nil
}

// Close cancels the subscription and unregisters the callback: from then
// on nothing is recorded and the gauges are no longer observed. Calling
// it again does nothing. The error is the MeterProvider's, if unregistering
// failed.
func (in *Instrumentation) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stop == nil {
		return nil
	}
	in.stop()
	in.stop = nil
	return in.reg.Unregister()
}

// StateValue is the value bulwark.circuit.state reports for s: 0 for
// Closed, 1 for HalfOpen, 2 for Open (ordered by severity, unlike the
// breaker.State constants).
func StateValue(s breaker.State) int64 {
	switch s {
	case breaker.HalfOpen:
		return 1
	case breaker.Open:
		return 2
	}
	return 0
}

// observe reports the counters of every executor that has counted
// something (a series appears with its first count), the circuit state
// and opens of every executor with a breaker, and the series of the load
// layers (see loadInstruments) of every executor that has them. bulwark.calls and the
// breaker's rejections are read from Stats, exact whatever the events
// sampled; with NoEvents, so are the fallbacks and replays, and the
// other counters are not reported.
func (in *Instrumentation) observe(_ context.Context, o metric.Observer) error {
	type count struct {
		inst metric.Int64ObservableCounter
		n    int64
		opts []metric.ObserveOption
	}
	report := func(counts ...count) {
		for _, c := range counts {
			if c.n > 0 {
				o.ObserveInt64(c.inst, c.n, c.opts...)
			}
		}
	}
	if !in.noEvents {
		for _, e := range *in.execs.Load() {
			report(
				count{in.retries, e.retries.Load(), e.oExec},
				count{in.exhausted, e.exhausted.Load(), e.oExec},
				count{in.rejections, e.bulkhead.Load(), e.oBulkhead},
				count{in.rejections, e.limiter.Load(), e.oLimit},
				count{in.fallback, e.fallback.Load(), e.oExec},
				count{in.replays, e.replays.Load(), e.oExec},
				count{in.compensation, e.compensated.Load(), e.oCompensated},
				count{in.compensation, e.failed.Load(), e.oFailed},
			)
		}
	}
	now := time.Now()
	for name, st := range in.stack.Stats() {
		e := in.execOf(name)
		in.load.observe(o, st, now, e.oExec)
		if in.noEvents {
			report(count{in.replays, st.Replays, e.oExec})
			if f := st.Fallback; f != nil {
				report(count{in.fallback, int64(f.Hits), e.oExec})
			}
		}
		b := st.Breaker
		if b == nil {
			continue
		}
		report(
			count{in.calls, b.Successes, e.oSuccess},
			count{in.calls, b.Failures, e.oFailure},
			count{in.calls, b.Rejections, e.oReject},
			count{in.rejections, b.Rejections, e.oBreaker},
		)
		o.ObserveInt64(in.state, StateValue(b.State), e.oExec...)
		o.ObserveInt64(in.opens, b.TimesOpened, e.oExec...)
	}
	return nil
}

// execOf returns the counts of executor, made on its first event. The map
// holds one entry per executor of the Stack, so it is bounded by the
// Stack's executors.
func (in *Instrumentation) execOf(executor string) *exec {
	if e, ok := (*in.execs.Load())[executor]; ok {
		return e
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	cur := *in.execs.Load()
	if e, ok := cur[executor]; ok {
		return e
	}
	e := newExec(executor)
	next := maps.Clone(cur)
	next[executor] = e
	in.execs.Store(&next)
	return e
}

// handle records one event. The breaker's request events give only the
// duration (of the sampled calls, or of every call with AllDurations):
// their counts are read from Stats. Its rejections are counted from Stats
// too; the event, which a sampled subscription does not get, gives only
// the span event.
func (in *Instrumentation) handle(ev bulwark.Event) {
	e := in.execOf(ev.Executor)
	switch ev.Kind {
	case bulwark.RequestSuccess:
		in.duration.Record(ctxOf(ev), ev.Duration.Seconds(), e.durSuccess...)
		return // no span event: the span reports its own outcome
	case bulwark.RequestFailure:
		in.duration.Record(ctxOf(ev), ev.Duration.Seconds(), e.durFailure...)
		return
	case bulwark.BulkheadRejected:
		e.bulkhead.Add(1)
	case bulwark.RateLimitRejected:
		e.limiter.Add(1)
	case bulwark.FallbackUsed:
		e.fallback.Add(1)
	case bulwark.RetryAttempt:
		e.retries.Add(1)
	case bulwark.RetryExhausted:
		e.exhausted.Add(1)
	case bulwark.IdempotencyReplayed:
		e.replays.Add(1)
	case bulwark.RollbackCompensated:
		e.compensated.Add(1)
	case bulwark.RollbackFailed:
		e.failed.Add(1)
	}
	if in.spanEvents && ev.Context != nil {
		addSpanEvent(ev, e.span)
	}
}

// ctxOf is the event's context, for exemplars: the call's span.
func ctxOf(ev bulwark.Event) context.Context {
	if ev.Context == nil {
		return context.Background()
	}
	return ev.Context
}
