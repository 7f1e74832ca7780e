package prometheus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

type page struct{ ID string }

var thePage = &page{ID: "p1"}

var err503 = errors.New("notion: 503 Service Unavailable")

// serve returns a function that takes d (virtual time) and then answers
// with the page, or with err503 while *down.
func serve(down *bool, d time.Duration) func(context.Context) (*page, error) {
	return func(context.Context) (*page, error) {
		time.Sleep(d)
		if *down {
			return nil, err503
		}
		return thePage, nil
	}
}

// outageStack: fallback, a breaker that opens after 3 failures and probes
// after 30s, 2 attempts per call with an exact 100ms wait.
func outageStack(t *testing.T) *pipeline.Stack {
	s, err := pipeline.New(pipeline.Config{
		Fallback: &pipeline.FallbackConfig{},
		Breaker:  &breaker.Config{FailureThreshold: 3, ResetTimeout: 30 * time.Second, RequestTimeout: -1},
		Retry:    &retry.Config{MaxAttempts: 2, InitialInterval: 100 * time.Millisecond, NoJitter: true},
	})
	require.NoError(t, err)
	return s
}

const circuitHelp = `
# HELP bulwark_circuit_state State of the executor's circuit: 0 closed, 1 half-open, 2 open.
# TYPE bulwark_circuit_state gauge
bulwark_circuit_state{executor="notion"} %d
`

func circuit(state int) string {
	return strings.Replace(circuitHelp, "%d", string(rune('0'+state)), 1)
}

// A scripted outage (a success, three calls that fail twice each with a
// 503, two calls rejected while the circuit is open and answered from the
// fallback, then recovery through two probes) gives exactly these series.
// With AllDurations the histogram has every call; by default it has the
// breaker's sample, which these few calls do not reach (no stripe counts
// 63 successes), so there is no histogram series, and every counter is
// the same.
func TestOutageSeries(t *testing.T) {
	t.Run("AllDurations", func(t *testing.T) { testOutageSeries(t, true) })
	t.Run("sampled", func(t *testing.T) { testOutageSeries(t, false) })
}

func testOutageSeries(t *testing.T, all bool) {
	synctest.Test(t, func(t *testing.T) {
		s := outageStack(t)
		c, err := NewCollector(s, Config{DurationBuckets: []float64{0.05, 0.2}, AllDurations: all})
		require.NoError(t, err)
		defer c.Close()

		ctx := t.Context()
		op := pipeline.Operation("get-page")
		down := false
		call := func() pipeline.Result[*page] {
			return pipeline.Execute(ctx, s, "notion", serve(&down, 10*time.Millisecond), op)
		}
		require.NoError(t, call().Err)
		require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(circuit(0)), "bulwark_circuit_state"))

		down = true
		for range 3 {
			r := call()
			require.True(t, r.FromCache)
			require.Equal(t, 2, r.Attempts)
		}
		require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(circuit(2)), "bulwark_circuit_state"))
		for range 2 {
			r := call()
			require.True(t, r.Rejected)
			require.True(t, r.FromCache)
		}
		down = false
		time.Sleep(30 * time.Second)
		synctest.Wait() // the reset timer fires at this instant: let it run (see the breaker package doc)
		require.NoError(t, call().Err)
		require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(circuit(1)), "bulwark_circuit_state"))
		require.NoError(t, call().Err)
		synctest.Wait()

		histogram := `
# HELP bulwark_call_duration_seconds Duration of calls through an executor's circuit breaker, retries included, by outcome (success, failure).
# TYPE bulwark_call_duration_seconds histogram
bulwark_call_duration_seconds_bucket{executor="notion",outcome="failure",le="0.05"} 0
bulwark_call_duration_seconds_bucket{executor="notion",outcome="failure",le="0.2"} 3
bulwark_call_duration_seconds_bucket{executor="notion",outcome="failure",le="+Inf"} 3
bulwark_call_duration_seconds_sum{executor="notion",outcome="failure"} 0.36
bulwark_call_duration_seconds_count{executor="notion",outcome="failure"} 3
bulwark_call_duration_seconds_bucket{executor="notion",outcome="success",le="0.05"} 3
bulwark_call_duration_seconds_bucket{executor="notion",outcome="success",le="0.2"} 3
bulwark_call_duration_seconds_bucket{executor="notion",outcome="success",le="+Inf"} 3
bulwark_call_duration_seconds_sum{executor="notion",outcome="success"} 0.03
bulwark_call_duration_seconds_count{executor="notion",outcome="success"} 3
`
		want := `
# HELP bulwark_calls_total Calls through an executor's circuit breaker, by outcome (success, failure, rejected).
# TYPE bulwark_calls_total counter
bulwark_calls_total{executor="notion",outcome="failure"} 3
bulwark_calls_total{executor="notion",outcome="rejected"} 2
bulwark_calls_total{executor="notion",outcome="success"} 3
# HELP bulwark_circuit_opens_total Times the executor's circuit opened since its breaker was made.
# TYPE bulwark_circuit_opens_total counter
bulwark_circuit_opens_total{executor="notion"} 1
# HELP bulwark_circuit_state State of the executor's circuit: 0 closed, 1 half-open, 2 open.
# TYPE bulwark_circuit_state gauge
bulwark_circuit_state{executor="notion"} 0
# HELP bulwark_fallback_served_total Failed or rejected calls answered with a cached value.
# TYPE bulwark_fallback_served_total counter
bulwark_fallback_served_total{executor="notion"} 5
# HELP bulwark_rejections_total Calls refused without running, by the layer that refused (breaker, bulkhead, ratelimit).
# TYPE bulwark_rejections_total counter
bulwark_rejections_total{executor="notion",layer="breaker"} 2
# HELP bulwark_retry_attempts_total Failed attempts that were followed, after a wait, by another attempt.
# TYPE bulwark_retry_attempts_total counter
bulwark_retry_attempts_total{executor="notion"} 3
# HELP bulwark_retry_exhausted_total Calls whose retries gave up.
# TYPE bulwark_retry_exhausted_total counter
bulwark_retry_exhausted_total{executor="notion"} 3
`
		if all {
			want = histogram + want
		} else {
			n, err := testutil.GatherAndCount(registry(t, c), "bulwark_call_duration_seconds")
			require.NoError(t, err)
			assert.Zero(t, n, "no call in the sample")
		}
		require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want),
			"bulwark_call_duration_seconds", "bulwark_calls_total", "bulwark_circuit_opens_total", "bulwark_circuit_state",
			"bulwark_fallback_served_total", "bulwark_rejections_total", "bulwark_retry_attempts_total", "bulwark_retry_exhausted_total"))
		n, err := testutil.GatherAndCount(registry(t, c), "bulwark_idempotency_replays_total", "bulwark_compensations_total")
		require.NoError(t, err)
		assert.Zero(t, n, "no replay, no compensation: no series")
	})
}

// Replays and compensations by result.
func TestReplaysAndCompensations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := pipeline.New(pipeline.Config{
			Idempotency: &pipeline.IdempotencyConfig{},
			Rollback:    &rollback.Config{Attempts: 2},
		})
		require.NoError(t, err)
		c, err := NewCollector(s, Config{})
		require.NoError(t, err)
		defer c.Close()

		ctx := t.Context()
		for range 2 {
			_, err := pipeline.Do(ctx, s, "payments", serve(new(bool), 0), pipeline.IdempotencyKey("charge-1"))
			require.NoError(t, err)
		}
		_, err = pipeline.Do(ctx, s, "payments", func(ctx context.Context) (*page, error) {
			require.NoError(t, rollback.OnRollback(ctx, "reserve", func(context.Context) error { return nil }))
			require.NoError(t, rollback.OnRollback(ctx, "charge", func(context.Context) error { return err503 }))
			return nil, err503
		})
		require.ErrorIs(t, err, err503)

		assert.Equal(t, 1.0, testutil.ToFloat64(c.replays.WithLabelValues("payments")))
		assert.Equal(t, 1.0, testutil.ToFloat64(c.compensation.WithLabelValues("payments", "compensated")))
		assert.Equal(t, 1.0, testutil.ToFloat64(c.compensation.WithLabelValues("payments", "failed")))
		n, err := testutil.GatherAndCount(registry(t, c), "bulwark_circuit_state", "bulwark_calls_total")
		require.NoError(t, err)
		assert.Zero(t, n, "no breaker: no circuit series and no calls")
	})
}

func registry(t *testing.T, c prom.Collector) *prom.Registry {
	reg := prom.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	return reg
}

// A real scrape: the Collector registered with a Registry, served by
// promhttp on a loopback server, read over HTTP in the text format. 640
// successes give the exact count and a histogram of their sample.
func TestScrape(t *testing.T) {
	s := outageStack(t)
	c, err := NewCollector(s, Config{})
	require.NoError(t, err)
	defer c.Close()
	srv := httptest.NewServer(promhttp.HandlerFor(registry(t, c), promhttp.HandlerOpts{}))
	defer srv.Close()

	for range 640 {
		_, err = pipeline.Do(t.Context(), s, "notion", serve(new(bool), 0))
		require.NoError(t, err)
	}
	s.Breaker("notion").ForceOpen()
	_, err = pipeline.Do(t.Context(), s, "notion", serve(new(bool), 0))
	require.ErrorIs(t, err, breaker.ErrOpen)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/metrics", nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	for _, line := range []string{
		`bulwark_calls_total{executor="notion",outcome="success"} 640`,
		`bulwark_calls_total{executor="notion",outcome="rejected"} 1`,
		`bulwark_rejections_total{executor="notion",layer="breaker"} 1`,
		`bulwark_circuit_state{executor="notion"} 2`,
		`bulwark_circuit_opens_total{executor="notion"} 1`,
		`# TYPE bulwark_call_duration_seconds histogram`,
	} {
		assert.Contains(t, string(body), line+"\n")
	}
	// One goroutine keeps one stripe (unless its stack moves): 10 calls
	// in the sample, or a few fewer.
	var n int
	_, err = fmt.Sscanf(string(body[strings.Index(string(body), `bulwark_call_duration_seconds_count{executor="notion",outcome="success"}`):]),
		`bulwark_call_duration_seconds_count{executor="notion",outcome="success"} %d`, &n)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 7)
	assert.LessOrEqual(t, n, 10)
}

// Close stops what comes from events (here the histogram); the series
// read from Stats (calls, circuit) still follow the Stack.
func TestClose(t *testing.T) {
	s := outageStack(t)
	c, err := NewCollector(s, Config{AllDurations: true})
	require.NoError(t, err)
	_, err = pipeline.Do(t.Context(), s, "notion", serve(new(bool), 0))
	require.NoError(t, err)
	c.Close()
	c.Close()
	_, err = pipeline.Do(t.Context(), s, "notion", serve(new(bool), 0))
	require.NoError(t, err)
	assert.Equal(t, 1, testutil.CollectAndCount(c.duration), "the call after Close is not observed")
	assert.Equal(t, 2.0, gatheredValue(t, registry(t, c), "bulwark_calls_total", "notion", "success"))
	n, err := testutil.GatherAndCount(registry(t, c), "bulwark_circuit_state")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

// gatheredValue is the value of the counter name with the label values
// labels (in label-name order), gathered from g; it fails the test if
// there is no such series.
func gatheredValue(t *testing.T, g prom.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetValue() != labels[i] {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func TestNewCollectorInvalid(t *testing.T) {
	_, err := NewCollector(nil, Config{})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, "stack")
	_, err = NewCollector(outageStack(t), Config{DurationBuckets: []float64{1, 0.5}})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, "DurationBuckets[1]")
	for _, b := range []float64{math.NaN(), math.Inf(1)} {
		_, err = NewCollector(outageStack(t), Config{DurationBuckets: []float64{0.1, b}})
		assert.ErrorIs(t, err, ErrInvalid, "%v", b)
		assert.ErrorContains(t, err, "finite")
	}
}

func TestStateValue(t *testing.T) {
	assert.Equal(t, 0, stateValue(breaker.Closed))
	assert.Equal(t, 1, stateValue(breaker.HalfOpen))
	assert.Equal(t, 2, stateValue(breaker.Open))
}

// With NoEvents the series Stats can give are read at scrape, and the
// Stack has no subscriber: the outage gives the same calls, rejections,
// fallbacks and circuit series, and nothing else.
func TestNoEventsOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := outageStack(t)
		c, err := NewCollector(s, Config{NoEvents: true})
		require.NoError(t, err)
		defer c.Close()
		reg := registry(t, c)

		ctx := t.Context()
		down := false
		call := func() pipeline.Result[*page] {
			return pipeline.Execute(ctx, s, "notion", serve(&down, 10*time.Millisecond), pipeline.Operation("get-page"))
		}
		require.NoError(t, call().Err)
		down = true
		for range 5 { // 3 failures open the circuit, 2 rejections
			require.True(t, call().FromCache)
		}
		want := `
# HELP bulwark_calls_total Calls through an executor's circuit breaker, by outcome (success, failure, rejected).
# TYPE bulwark_calls_total counter
bulwark_calls_total{executor="notion",outcome="failure"} 3
bulwark_calls_total{executor="notion",outcome="rejected"} 2
bulwark_calls_total{executor="notion",outcome="success"} 1
# HELP bulwark_circuit_opens_total Times the executor's circuit opened since its breaker was made.
# TYPE bulwark_circuit_opens_total counter
bulwark_circuit_opens_total{executor="notion"} 1
# HELP bulwark_circuit_state State of the executor's circuit: 0 closed, 1 half-open, 2 open.
# TYPE bulwark_circuit_state gauge
bulwark_circuit_state{executor="notion"} 2
# HELP bulwark_fallback_served_total Failed or rejected calls answered with a cached value.
# TYPE bulwark_fallback_served_total counter
bulwark_fallback_served_total{executor="notion"} 5
# HELP bulwark_rejections_total Calls refused without running, by the layer that refused (breaker, bulkhead, ratelimit).
# TYPE bulwark_rejections_total counter
bulwark_rejections_total{executor="notion",layer="breaker"} 2
`
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want)), "every series, and only these")
	})
}
