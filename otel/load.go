package otel

import (
	"errors"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/pipeline"
)

// loadInstruments are the instruments of the load layers' state: the
// bulkhead, the rate limiter and the retry budget. All are observed from
// Stack.Stats() when the MeterProvider collects, for the executors that
// have the layer: nothing is recorded on the calls' path.
type loadInstruments struct {
	inFlight      metric.Int64ObservableGauge   // bulwark.bulkhead.in_flight
	limit         metric.Int64ObservableGauge   // bulwark.bulkhead.limit
	waiting       metric.Int64ObservableGauge   // bulwark.bulkhead.waiting
	pauseLeft     metric.Float64ObservableGauge // bulwark.ratelimit.pause.remaining
	delayed       metric.Int64ObservableCounter // bulwark.ratelimit.delayed
	budgetRefused metric.Int64ObservableCounter // bulwark.retry.budget.refused
}

// Descriptions of the load layers' instruments; the prometheus module's
// help texts are the same.
const (
	descInFlight      = "Bulkhead slots in use: attempts running now through the executor's bulkhead."
	descLimit         = "Bulkhead slots in all: the executor's bulkhead MaxConcurrent."
	descWaiting       = "Calls waiting now in the queue of the executor's bulkhead for a slot."
	descPauseLeft     = "Seconds left of the executor's rate limiter pause (a Retry-After), 0 when it is not paused."
	descDelayed       = "Calls the executor's rate limiter let through after making them wait (for a token or a pause)."
	descBudgetRefused = "Retries the executor's retry budget refused."
)

func newLoadInstruments(m metric.Meter) (loadInstruments, error) {
	var l loadInstruments
	var errs []error
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit("{call}"), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	l.inFlight = gauge("bulwark.bulkhead.in_flight", descInFlight)
	l.limit = gauge("bulwark.bulkhead.limit", descLimit)
	l.waiting = gauge("bulwark.bulkhead.waiting", descWaiting)
	var err error
	l.pauseLeft, err = m.Float64ObservableGauge("bulwark.ratelimit.pause.remaining",
		metric.WithUnit("s"), metric.WithDescription(descPauseLeft))
	errs = append(errs, err)
	l.delayed = counter("bulwark.ratelimit.delayed", "{call}", descDelayed)
	l.budgetRefused = counter("bulwark.retry.budget.refused", "{retry}", descBudgetRefused)
	return l, errors.Join(errs...)
}

func (l *loadInstruments) observables() []metric.Observable {
	return []metric.Observable{l.inFlight, l.limit, l.waiting, l.pauseLeft, l.delayed, l.budgetRefused}
}

// observe reports the load layers of one executor's Stats at now, each
// series only when the executor has its layer, and then always (a zero
// included, so that a rate or an alert has its series from the start).
func (l *loadInstruments) observe(o metric.Observer, st pipeline.Stats, now time.Time, opts []metric.ObserveOption) {
	if b := st.Bulkhead; b != nil {
		o.ObserveInt64(l.inFlight, int64(b.InFlight), opts...)
		o.ObserveInt64(l.limit, int64(b.MaxConcurrent), opts...)
		o.ObserveInt64(l.waiting, int64(b.Waiting), opts...)
	}
	if r := st.RateLimit; r != nil {
		o.ObserveFloat64(l.pauseLeft, r.PauseLeft(now).Seconds(), opts...)
		o.ObserveInt64(l.delayed, r.Delayed, opts...)
	}
	if b := st.RetryBudget; b != nil {
		o.ObserveInt64(l.budgetRefused, b.Refused, opts...)
	}
}
