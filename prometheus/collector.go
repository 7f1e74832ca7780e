package prometheus

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/internal/metricdef"
	"github.com/bulwark-go/bulwark/pipeline"
)

// ErrInvalid is wrapped by the error of [NewCollector] for an argument it
// cannot use; the message names it.
var ErrInvalid = errors.New("prometheus: invalid")

// DefaultDurationBuckets are the buckets, in seconds, of
// bulwark_call_duration_seconds when Config.DurationBuckets is nil: the
// same as the otel module's.
func DefaultDurationBuckets() []float64 { return metricdef.DefaultDurationBuckets() }

// Config configures [NewCollector]. The zero Config is ready to use.
type Config struct {
	// DurationBuckets are the upper bounds, in seconds and increasing, of
	// the bulwark_call_duration_seconds buckets. nil:
	// [DefaultDurationBuckets]. Bounds that are not finite or not
	// increasing are an error.
	DurationBuckets []float64

	// AllDurations makes the Collector subscribe to every event
	// (pipeline.Stack.Subscribe) and observe the duration of every call in
	// bulwark_call_duration_seconds. It costs every call: the breaker
	// leaves its fast path (two clock reads and an event per call) and the
	// histogram is observed per call. false (the default): the histogram
	// holds the breaker's latency sample, about one call in 64 (see
	// pipeline.Stack.SubscribeSampled), and a CLOSED success keeps the
	// breaker's allocation-free fast path; the counters are exact either
	// way. The otel module's option of the same name does the same.
	// Ignored with NoEvents.
	AllDurations bool

	// NoEvents makes the Collector read everything from Stack.Stats() at
	// scrape and not subscribe to the Stack: calls then cost nothing
	// more than without metrics (the breaker keeps its fast path), but
	// only the series Stats can give are reported — bulwark_calls_total,
	// bulwark_rejections_total (layer "breaker"),
	// bulwark_fallback_served_total, bulwark_idempotency_replays_total,
	// the circuit series and the load layers' series, counted since each executor's layers were made
	// — and there is no duration histogram and no retry or compensation
	// counter. false (the default): every series; bulwark_calls_total,
	// the breaker's rejections, the circuit series and the load layers'
	// series are read from Stats,
	// the other counters and the histogram come from the events.
	NoEvents bool
}

// Collector is a prometheus.Collector over one Stack (see the package
// documentation for its series). Make it with [NewCollector], register it
// with a prometheus.Registerer, and [Collector.Close] it when done. It is
// safe for concurrent use.
type Collector struct {
	stack *pipeline.Stack

	duration     *prom.HistogramVec
	retries      *prom.CounterVec
	exhausted    *prom.CounterVec
	rejections   *prom.CounterVec
	fallback     *prom.CounterVec
	replays      *prom.CounterVec
	compensation *prom.CounterVec
	state        *prom.Desc
	opens        *prom.Desc
	noEvents     bool
	// The descriptors of the series read from Stats: calls and the
	// breaker's rejections always (rejectionsDesc is the rejections
	// vector's own), fallbacks and replays with NoEvents.
	callsDesc, rejectionsDesc, fallbackDesc, replaysDesc *prom.Desc
	load                                                 loadDescs // always read from Stats

	mu    sync.Mutex                         // serializes adding executors and Close
	execs atomic.Pointer[map[string]*series] // copy on write
	stop  func()                             // the Stack subscription; nil once closed
}

// series are the children of one executor, each made on its first use so
// that, as with OpenTelemetry, a series appears with its first event.
type series struct {
	durSuccess, durFailure lazy[prom.Observer]
	retries, exhausted     lazy[prom.Counter]
	bulkhead, limiter      lazy[prom.Counter]
	fallback, replays      lazy[prom.Counter]
	compensated, failed    lazy[prom.Counter]
}

// lazy is a child of a vector, looked up on first use only: later uses
// cost an atomic load.
type lazy[T any] struct {
	once sync.Once
	v    T
	make func() T
}

func (l *lazy[T]) get() T {
	l.once.Do(func() { l.v = l.make() })
	return l.v
}

func counterOf(v *prom.CounterVec, labels ...string) lazy[prom.Counter] {
	return lazy[prom.Counter]{make: func() prom.Counter { return v.WithLabelValues(labels...) }}
}

func observerOf(v *prom.HistogramVec, labels ...string) lazy[prom.Observer] {
	return lazy[prom.Observer]{make: func() prom.Observer { return v.WithLabelValues(labels...) }}
}

const (
	helpCalls      = "Calls through an executor's circuit breaker, by outcome (success, failure, rejected)."
	helpRejections = "Calls refused without running, by the layer that refused (breaker, bulkhead, ratelimit)."
	helpFallback   = "Failed or rejected calls answered with a cached value."
	helpReplays    = "Calls answered with the stored result of an idempotent operation instead of running again."
)

// NewCollector returns a Collector over stack, subscribed to its events
// (with pipeline.Stack.SubscribeSampled, or Subscribe with
// cfg.AllDurations, or not at all with cfg.NoEvents). Errors wrap [ErrInvalid]: a nil stack, DurationBuckets not finite or
// not increasing.
func NewCollector(stack *pipeline.Stack, cfg Config) (*Collector, error) {
	if stack == nil {
		return nil, fmt.Errorf("%w: stack is nil", ErrInvalid)
	}
	buckets, why := metricdef.Buckets(cfg.DurationBuckets)
	if why != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, why)
	}
	counter := func(name, help string, labels ...string) *prom.CounterVec {
		return prom.NewCounterVec(prom.CounterOpts{Name: name, Help: help}, append([]string{"executor"}, labels...))
	}
	c := &Collector{
		stack:        stack,
		retries:      counter("bulwark_retry_attempts_total", "Failed attempts that were followed, after a wait, by another attempt."),
		exhausted:    counter("bulwark_retry_exhausted_total", "Calls whose retries gave up."),
		rejections:   counter("bulwark_rejections_total", helpRejections, "layer"),
		fallback:     counter("bulwark_fallback_served_total", helpFallback),
		replays:      counter("bulwark_idempotency_replays_total", helpReplays),
		compensation: counter("bulwark_compensations_total", "Compensations (undo actions) run, by result (compensated, failed).", "result"),
		duration: prom.NewHistogramVec(prom.HistogramOpts{
			Name:    "bulwark_call_duration_seconds",
			Help:    metricdef.DurationHelp(cfg.AllDurations),
			Buckets: buckets,
		}, []string{"executor", "outcome"}),
		state:          prom.NewDesc("bulwark_circuit_state", "State of the executor's circuit: 0 closed, 1 half-open, 2 open.", []string{"executor"}, nil),
		opens:          prom.NewDesc("bulwark_circuit_opens_total", "Times the executor's circuit opened since its breaker was made.", []string{"executor"}, nil),
		callsDesc:      prom.NewDesc("bulwark_calls_total", helpCalls, []string{"executor", "outcome"}, nil),
		rejectionsDesc: prom.NewDesc("bulwark_rejections_total", helpRejections, []string{"executor", "layer"}, nil),
		load:           newLoadDescs(),
	}
	empty := map[string]*series{}
	c.execs.Store(&empty)
	if cfg.NoEvents {
		c.noEvents = true
		c.fallbackDesc = prom.NewDesc("bulwark_fallback_served_total", helpFallback, []string{"executor"}, nil)
		c.replaysDesc = prom.NewDesc("bulwark_idempotency_replays_total", helpReplays, []string{"executor"}, nil)
	}
	c.stop = metricdef.Subscribe(stack, cfg.NoEvents, cfg.AllDurations, c.handle)
	return c, nil
}

// Close cancels the Collector's subscription to the Stack: the counters
// and the histogram that come from events stop counting (they keep their
// values). The series read from Stack.Stats() — calls, the breaker's
// rejections, the circuit — are still read at every scrape while the
// Collector is registered: unregister it to drop them. Calling Close
// again does nothing.
func (c *Collector) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
}

func (c *Collector) vecs() []prom.Collector {
	if c.noEvents {
		return nil
	}
	return []prom.Collector{c.duration, c.retries, c.exhausted, c.rejections, c.fallback, c.replays, c.compensation}
}

// Describe sends the descriptors of every series the Collector may report.
func (c *Collector) Describe(ch chan<- *prom.Desc) {
	for _, v := range c.vecs() {
		v.Describe(ch)
	}
	ch <- c.callsDesc
	ch <- c.rejectionsDesc // the same as the vector's, if it was sent: allowed
	if c.noEvents {
		ch <- c.fallbackDesc
		ch <- c.replaysDesc
	}
	ch <- c.state
	ch <- c.opens
	c.load.describe(ch)
}

// Collect sends the counters and histograms recorded so far, the calls,
// breaker rejections, circuit state and opens of every executor with a
// breaker, and the state of the load layers (bulkhead, rate limiter,
// retry budget) of every executor that has them, read from Stack.Stats()
// now.
func (c *Collector) Collect(ch chan<- prom.Metric) {
	for _, v := range c.vecs() {
		v.Collect(ch)
	}
	now := time.Now()
	for name, st := range c.stack.Stats() {
		c.collectStats(ch, name, st)
		c.load.collect(ch, name, st, now)
		if b := st.Breaker; b != nil {
			ch <- prom.MustNewConstMetric(c.state, prom.GaugeValue, float64(stateValue(b.State)), name)
			ch <- prom.MustNewConstMetric(c.opens, prom.CounterValue, float64(b.TimesOpened), name)
		}
	}
}

// collectStats sends the counters read from an executor's Stats, those
// that have counted something (as with events, a series appears with its
// first count): calls and the breaker's rejections, exact whatever the
// events sampled, and with NoEvents the fallbacks and replays.
func (c *Collector) collectStats(ch chan<- prom.Metric, name string, st pipeline.Stats) {
	counter := func(d *prom.Desc, n int64, labels ...string) {
		if n > 0 {
			ch <- prom.MustNewConstMetric(d, prom.CounterValue, float64(n), append([]string{name}, labels...)...)
		}
	}
	if c.noEvents {
		counter(c.replaysDesc, st.Replays)
		if f := st.Fallback; f != nil {
			counter(c.fallbackDesc, int64(f.Hits))
		}
	}
	if b := st.Breaker; b != nil {
		counter(c.callsDesc, b.Successes, "success")
		counter(c.callsDesc, b.Failures, "failure")
		counter(c.callsDesc, b.Rejections, "rejected")
		counter(c.rejectionsDesc, b.Rejections, "breaker")
	}
}

// stateValue is the value of bulwark_circuit_state for s: 0 Closed, 1
// HalfOpen, 2 Open (as the otel module's StateValue).
func stateValue(s breaker.State) int {
	switch s {
	case breaker.HalfOpen:
		return 1
	case breaker.Open:
		return 2
	}
	return 0
}

// seriesOf returns the children of executor, made on its first event. The
// map holds one entry per executor of the Stack, so it is bounded by the
// Stack's executors.
func (c *Collector) seriesOf(executor string) *series {
	if s, ok := (*c.execs.Load())[executor]; ok {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := *c.execs.Load()
	if s, ok := cur[executor]; ok {
		return s
	}
	s := &series{
		durSuccess:  observerOf(c.duration, executor, "success"),
		durFailure:  observerOf(c.duration, executor, "failure"),
		retries:     counterOf(c.retries, executor),
		exhausted:   counterOf(c.exhausted, executor),
		bulkhead:    counterOf(c.rejections, executor, "bulkhead"),
		limiter:     counterOf(c.rejections, executor, "ratelimit"),
		fallback:    counterOf(c.fallback, executor),
		replays:     counterOf(c.replays, executor),
		compensated: counterOf(c.compensation, executor, "compensated"),
		failed:      counterOf(c.compensation, executor, "failed"),
	}
	next := maps.Clone(cur)
	next[executor] = s
	c.execs.Store(&next)
	return s
}

// handle records one event. The breaker's request events give only the
// duration (of the sampled calls, or of every call with AllDurations):
// their counts, and the breaker's rejections, are read from Stats.
func (c *Collector) handle(ev bulwark.Event) {
	switch ev.Kind {
	case bulwark.RequestSuccess:
		c.seriesOf(ev.Executor).durSuccess.get().Observe(ev.Duration.Seconds())
	case bulwark.RequestFailure:
		c.seriesOf(ev.Executor).durFailure.get().Observe(ev.Duration.Seconds())
	case bulwark.BulkheadRejected:
		c.seriesOf(ev.Executor).bulkhead.get().Inc()
	case bulwark.RateLimitRejected:
		c.seriesOf(ev.Executor).limiter.get().Inc()
	case bulwark.FallbackUsed:
		c.seriesOf(ev.Executor).fallback.get().Inc()
	case bulwark.RetryAttempt:
		c.seriesOf(ev.Executor).retries.get().Inc()
	case bulwark.RetryExhausted:
		c.seriesOf(ev.Executor).exhausted.get().Inc()
	case bulwark.IdempotencyReplayed:
		c.seriesOf(ev.Executor).replays.get().Inc()
	case bulwark.RollbackCompensated:
		c.seriesOf(ev.Executor).compensated.get().Inc()
	case bulwark.RollbackFailed:
		c.seriesOf(ev.Executor).failed.get().Inc()
	}
}
