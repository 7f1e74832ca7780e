package otel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Instrumentation is the OpenTelemetry instrumentation of one Stack, made
// by [Instrument]. It is safe for concurrent use.
type Instrumentation struct {
	stack      *pipeline.Stack
	spanEvents bool

	calls        metric.Int64Counter
	duration     metric.Float64Histogram
	retries      metric.Int64Counter
	exhausted    metric.Int64Counter
	rejections   metric.Int64Counter
	fallback     metric.Int64Counter
	replays      metric.Int64Counter
	compensation metric.Int64Counter
	state        metric.Int64ObservableGauge
	opens        metric.Int64ObservableCounter

	mu    sync.Mutex                        // serializes adding executors and Close
	execs atomic.Pointer[map[string]*attrs] // copy on write
	reg   metric.Registration
	stop  func() // the Stack subscription; nil once closed
}

// attrs are the measurement options of one executor, made once: every
// measurement passes a ready slice, so recording allocates nothing.
type attrs struct {
	success, failure, rejected []metric.AddOption
	durSuccess, durFailure     []metric.RecordOption
	exec                       []metric.AddOption
	breaker, bulkhead, limiter []metric.AddOption
	compensated, failed        []metric.AddOption
	observe                    []metric.ObserveOption
	span                       attribute.KeyValue // bulwark.executor
}

func newAttrs(executor string) *attrs {
	e := attribute.String("executor", executor)
	add := func(kvs ...attribute.KeyValue) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kvs...))}
	}
	rec := func(kvs ...attribute.KeyValue) []metric.RecordOption {
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kvs...))}
	}
	return &attrs{
		success:     add(e, attribute.String("outcome", "success")),
		failure:     add(e, attribute.String("outcome", "failure")),
		rejected:    add(e, attribute.String("outcome", "rejected")),
		durSuccess:  rec(e, attribute.String("outcome", "success")),
		durFailure:  rec(e, attribute.String("outcome", "failure")),
		exec:        add(e),
		breaker:     add(e, attribute.String("layer", "breaker")),
		bulkhead:    add(e, attribute.String("layer", "bulkhead")),
		limiter:     add(e, attribute.String("layer", "ratelimit")),
		compensated: add(e, attribute.String("result", "compensated")),
		failed:      add(e, attribute.String("result", "failed")),
		observe:     []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(e))},
		span:        attribute.String("bulwark.executor", executor),
	}
}

// Instrument records the events of stack as metrics, and as span events
// on the calls' spans unless cfg.NoSpanEvents (see the package
// documentation for the instruments and events). It subscribes to stack
// at once and registers a callback that reads stack.Stats() when the
// MeterProvider collects; [Instrumentation.Close] undoes both.
//
// Errors wrap [ErrInvalid] for a nil stack or DurationBuckets that are not
// increasing, or are the MeterProvider's when it refuses an instrument.
func Instrument(stack *pipeline.Stack, cfg Config) (*Instrumentation, error) {
	if stack == nil {
		return nil, fmt.Errorf("%w: stack is nil", ErrInvalid)
	}
	buckets := cfg.DurationBuckets
	if buckets == nil {
		buckets = DefaultDurationBuckets()
	}
	for i := 1; i < len(buckets); i++ {
		if !(buckets[i] > buckets[i-1]) {
			return nil, fmt.Errorf("%w: DurationBuckets[%d] is %v, must be greater than DurationBuckets[%d] (%v)", ErrInvalid, i, buckets[i], i-1, buckets[i-1])
		}
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	in := &Instrumentation{stack: stack, spanEvents: !cfg.NoSpanEvents}
	empty := map[string]*attrs{}
	in.execs.Store(&empty)

	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
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
		metric.WithDescription("Duration of calls through an executor's circuit breaker, retries included, by outcome (success, failure)."),
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
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	in.reg, err = m.RegisterCallback(in.observe, in.state, in.opens)
	if err != nil {
		return nil, err
	}
	in.stop = stack.Subscribe(in.handle)
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

// observe reports the circuit gauges of every executor with a breaker.
func (in *Instrumentation) observe(_ context.Context, o metric.Observer) error {
	for name, st := range in.stack.Stats() {
		b := st.Breaker
		if b == nil {
			continue
		}
		a := in.attrsOf(name)
		o.ObserveInt64(in.state, StateValue(b.State), a.observe...)
		o.ObserveInt64(in.opens, b.TimesOpened, a.observe...)
	}
	return nil
}

// attrsOf returns the options of executor, made on its first event. The
// map holds one entry per executor of the Stack, so it is bounded by the
// Stack's executors.
func (in *Instrumentation) attrsOf(executor string) *attrs {
	if a, ok := (*in.execs.Load())[executor]; ok {
		return a
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	cur := *in.execs.Load()
	if a, ok := cur[executor]; ok {
		return a
	}
	next := make(map[string]*attrs, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	a := newAttrs(executor)
	next[executor] = a
	in.execs.Store(&next)
	return a
}

// handle records one event.
func (in *Instrumentation) handle(ev bulwark.Event) {
	ctx := ev.Context
	if ctx == nil {
		ctx = context.Background()
	}
	a := in.attrsOf(ev.Executor)
	switch ev.Kind {
	case bulwark.RequestSuccess:
		in.calls.Add(ctx, 1, a.success...)
		in.duration.Record(ctx, ev.Duration.Seconds(), a.durSuccess...)
		return // no span event: the span reports its own outcome
	case bulwark.RequestFailure:
		in.calls.Add(ctx, 1, a.failure...)
		in.duration.Record(ctx, ev.Duration.Seconds(), a.durFailure...)
		return
	case bulwark.RequestRejected:
		in.calls.Add(ctx, 1, a.rejected...)
		in.rejections.Add(ctx, 1, a.breaker...)
	case bulwark.BulkheadRejected:
		in.rejections.Add(ctx, 1, a.bulkhead...)
	case bulwark.RateLimitRejected:
		in.rejections.Add(ctx, 1, a.limiter...)
	case bulwark.FallbackUsed:
		in.fallback.Add(ctx, 1, a.exec...)
	case bulwark.RetryAttempt:
		in.retries.Add(ctx, 1, a.exec...)
	case bulwark.RetryExhausted:
		in.exhausted.Add(ctx, 1, a.exec...)
	case bulwark.IdempotencyReplayed:
		in.replays.Add(ctx, 1, a.exec...)
	case bulwark.RollbackCompensated:
		in.compensation.Add(ctx, 1, a.compensated...)
	case bulwark.RollbackFailed:
		in.compensation.Add(ctx, 1, a.failed...)
	}
	if in.spanEvents && ev.Context != nil {
		addSpanEvent(ev, a.span)
	}
}
