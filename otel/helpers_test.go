package otel

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect reads every metric of reader, by name.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// label renders an attribute set as "k=v,k=v" in key order.
func label(set attribute.Set) string {
	var parts []string
	for _, kv := range set.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// ints returns the points of an int64 sum or gauge, by attributes.
func ints(t *testing.T, m metricdata.Metrics) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out[label(p.Attributes)] = p.Value
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out[label(p.Attributes)] = p.Value
		}
	default:
		t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
	}
	return out
}

// floats returns the points of a float64 gauge, by attributes.
func floats(t *testing.T, m metricdata.Metrics) map[string]float64 {
	t.Helper()
	d, ok := m.Data.(metricdata.Gauge[float64])
	require.True(t, ok, "%s: %T", m.Name, m.Data)
	out := map[string]float64{}
	for _, p := range d.DataPoints {
		out[label(p.Attributes)] = p.Value
	}
	return out
}

// hist is one histogram point, summarized.
type hist struct {
	Count uint64
	Sum   float64
}

func hists(t *testing.T, m metricdata.Metrics) map[string]hist {
	t.Helper()
	d, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%s: %T", m.Name, m.Data)
	out := map[string]hist{}
	for _, p := range d.DataPoints {
		// Round the sum to the microsecond: float sums of decimal seconds
		// are not exact.
		out[label(p.Attributes)] = hist{Count: p.Count, Sum: float64(time.Duration(p.Sum*1e9).Round(time.Microsecond)) / 1e9}
	}
	return out
}

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
