package prometheus

import (
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-go/bulwark/pipeline"
)

// loadDescs are the series of the load layers' state: the bulkhead, the
// rate limiter and the retry budget, read from Stack.Stats() at scrape
// for the executors that have the layer (nothing on the calls' path).
// Their names and help are the otel module's instruments, translated as
// the OpenTelemetry Prometheus exporter translates them.
type loadDescs struct {
	inFlight, limit, waiting *prom.Desc // gauges
	pauseLeft                *prom.Desc // gauge, seconds
	delayed, budgetRefused   *prom.Desc // counters
}

func newLoadDescs() loadDescs {
	desc := func(name, help string) *prom.Desc {
		return prom.NewDesc(name, help, []string{"executor"}, nil)
	}
	return loadDescs{
		inFlight:      desc("bulwark_bulkhead_in_flight", "Bulkhead slots in use: attempts running now through the executor's bulkhead."),
		limit:         desc("bulwark_bulkhead_limit", "Bulkhead slots in all: the executor's bulkhead MaxConcurrent."),
		waiting:       desc("bulwark_bulkhead_waiting", "Calls waiting now in the queue of the executor's bulkhead for a slot."),
		pauseLeft:     desc("bulwark_ratelimit_pause_remaining_seconds", "Seconds left of the executor's rate limiter pause (a Retry-After), 0 when it is not paused."),
		delayed:       desc("bulwark_ratelimit_delayed_total", "Calls the executor's rate limiter let through after making them wait (for a token or a pause)."),
		budgetRefused: desc("bulwark_retry_budget_refused_total", "Retries the executor's retry budget refused."),
	}
}

func (d *loadDescs) describe(ch chan<- *prom.Desc) {
	ch <- d.inFlight
	ch <- d.limit
	ch <- d.waiting
	ch <- d.pauseLeft
	ch <- d.delayed
	ch <- d.budgetRefused
}

// collect sends the load layers of executor name's Stats at now, each
// series only when the executor has its layer, and then always (a zero
// included, so that a rate or an alert has its series from the start).
func (d *loadDescs) collect(ch chan<- prom.Metric, name string, st pipeline.Stats, now time.Time) {
	send := func(desc *prom.Desc, t prom.ValueType, v float64) {
		ch <- prom.MustNewConstMetric(desc, t, v, name)
	}
	if b := st.Bulkhead; b != nil {
		send(d.inFlight, prom.GaugeValue, float64(b.InFlight))
		send(d.limit, prom.GaugeValue, float64(b.MaxConcurrent))
		send(d.waiting, prom.GaugeValue, float64(b.Waiting))
	}
	if r := st.RateLimit; r != nil {
		send(d.pauseLeft, prom.GaugeValue, r.PauseLeft(now).Seconds())
		send(d.delayed, prom.CounterValue, float64(r.Delayed))
	}
	if b := st.RetryBudget; b != nil {
		send(d.budgetRefused, prom.CounterValue, float64(b.Refused))
	}
}
