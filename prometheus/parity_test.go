package prometheus

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	bulwarkotel "github.com/bulwark-go/bulwark/otel"
	"github.com/bulwark-go/bulwark/pipeline"
)

// The otel module's metrics, exported by the OpenTelemetry Prometheus
// exporter with its default name translation, are the Collector's series:
// the same names, types, label sets and values after 640 successes and
// the scripted outage (the exporter's own labels and target_info aside),
// whether both record the breaker's sample of the durations (the
// default: the same sampled events reach both) or every duration.
func TestSameSeriesAsOTel(t *testing.T) {
	t.Run("sampled", func(t *testing.T) { testSameSeriesAsOTel(t, false) })
	t.Run("AllDurations", func(t *testing.T) { testSameSeriesAsOTel(t, true) })
}

func testSameSeriesAsOTel(t *testing.T, all bool) {
	synctest.Test(t, func(t *testing.T) {
		s := outageStack(t)
		coll, err := NewCollector(s, Config{AllDurations: all})
		require.NoError(t, err)
		defer coll.Close()
		ours := prom.NewPedanticRegistry()
		require.NoError(t, ours.Register(coll))

		theirs := prom.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(theirs), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
		require.NoError(t, err)
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		inst, err := bulwarkotel.Instrument(s, bulwarkotel.Config{MeterProvider: mp, NoSpanEvents: true, AllDurations: all})
		require.NoError(t, err)
		defer inst.Close()

		ctx := t.Context()
		down := false
		call := func() {
			pipeline.Execute(ctx, s, "notion", serve(&down, 10*time.Millisecond), pipeline.Operation("get-page"))
		}
		for range 640 {
			call()
		}
		down = true
		for range 5 { // 3 failures open the circuit, 2 rejections
			call()
		}

		want := gathered(t, ours)
		got := gathered(t, theirs)
		require.NotEmpty(t, want)
		calls := `bulwark_calls_total{executor=notion,outcome=success} COUNTER`
		durations := `bulwark_call_duration_seconds{executor=notion,outcome=success} HISTOGRAM count`
		assert.Equal(t, 640.0, want[calls])
		if all {
			assert.Equal(t, 640.0, want[durations])
		} else {
			assert.Positive(t, want[durations], "a sample")
			assert.LessOrEqual(t, want[durations], 10.0, "at most one call in 64")
		}
		assert.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)), "series names and labels")
		assert.Equal(t, want, got, "series values")
	})
}

// gathered gathers reg as "name{labels} type" → value, one entry per sample
// (histogram buckets, sum and count each), without the exporter's own
// labels.
func gathered(t *testing.T, reg prom.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if strings.HasPrefix(l.GetName(), "otel_") {
					continue
				}
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(labels)
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "} " + mf.GetType().String()
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				out[key+" count"] = float64(h.GetSampleCount())
				out[key+" sum (ns, to the µs)"] = float64(time.Duration(h.GetSampleSum() * 1e9).Round(time.Microsecond))
				for _, b := range h.GetBucket() {
					out[key+" le="+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

// The same holds for the load layers' state: a stack with a bulkhead held
// full, a rate limiter paused by a Retry-After and a retry budget that
// refused retries gives the same series through the exporter as through
// the Collector, under load and once drained.
func TestSameLoadSeriesAsOTel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := loadStack(t)
		coll, err := NewCollector(s, Config{})
		require.NoError(t, err)
		defer coll.Close()
		ours := prom.NewPedanticRegistry()
		require.NoError(t, ours.Register(coll))

		theirs := prom.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(theirs), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
		require.NoError(t, err)
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		inst, err := bulwarkotel.Instrument(s, bulwarkotel.Config{MeterProvider: mp, NoSpanEvents: true})
		require.NoError(t, err)
		defer inst.Close()

		release := make(chan struct{})
		done := loadUp(t, s, release)
		want := gathered(t, ours)
		for key, v := range map[string]float64{
			`bulwark_bulkhead_in_flight{executor=bh} GAUGE`:                2,
			`bulwark_bulkhead_limit{executor=bh} GAUGE`:                    2,
			`bulwark_bulkhead_waiting{executor=bh} GAUGE`:                  1,
			`bulwark_ratelimit_pause_remaining_seconds{executor=rl} GAUGE`: 30,
			`bulwark_ratelimit_delayed_total{executor=rl} COUNTER`:         2,
			`bulwark_retry_budget_refused_total{executor=rb} COUNTER`:      2,
		} {
			assert.Equal(t, v, want[key], key)
		}
		got := gathered(t, theirs)
		assert.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)), "series names and labels")
		assert.Equal(t, want, got, "series values, under load")

		time.Sleep(10 * time.Second)
		close(release)
		done()
		want, got = gathered(t, ours), gathered(t, theirs)
		assert.Equal(t, 20.0, want[`bulwark_ratelimit_pause_remaining_seconds{executor=rl} GAUGE`])
		assert.Equal(t, want, got, "series values, drained")
	})
}
