package otel

import (
	"errors"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/internal/metricdef"
)

// ErrInvalid is wrapped by the error of [Instrument] for an argument it
// cannot use; the message names it.
var ErrInvalid = errors.New("otel: invalid")

// ScopeName is the name of the Meter the instruments belong to.
const ScopeName = "github.com/bulwark-go/bulwark/otel"

// DefaultDurationBuckets are the explicit bucket boundaries, in seconds,
// advised for bulwark.call.duration when Config.DurationBuckets is nil:
// those the OpenTelemetry semantic conventions advise for
// http.client.request.duration. A View in the MeterProvider overrides
// them.
func DefaultDurationBuckets() []float64 { return metricdef.DefaultDurationBuckets() }

// Config configures [Instrument]. The zero Config records metrics with the
// global MeterProvider and adds span events.
type Config struct {
	// MeterProvider provides the Meter of the instruments. nil: the
	// global one (go.opentelemetry.io/otel.GetMeterProvider).
	MeterProvider metric.MeterProvider

	// DurationBuckets are the boundaries, in seconds and increasing,
	// advised for the bulwark.call.duration histogram. nil:
	// [DefaultDurationBuckets]. Bounds that are not finite or not
	// increasing are an error.
	DurationBuckets []float64

	// NoSpanEvents turns the span events off; metrics only. false (the
	// default): span events on.
	NoSpanEvents bool

	// AllDurations makes the instrumentation subscribe to every event
	// (pipeline.Stack.Subscribe) and record the duration of every call in
	// bulwark.call.duration. It costs every call: the breaker leaves its
	// fast path (two clock reads and an event per call) and the SDK's
	// Histogram.Record runs per call, about +300 ns per call on the
	// machine of docs/operations.md. false (the default): the histogram
	// holds the breaker's latency sample, about one call in 64 (see
	// pipeline.Stack.SubscribeSampled), and a CLOSED success keeps the
	// breaker's allocation-free fast path; the counters are exact either
	// way. Ignored with NoEvents.
	AllDurations bool

	// NoEvents makes the instrumentation read everything from
	// Stack.Stats() when the MeterProvider collects, and not subscribe to
	// the Stack: calls then cost nothing more than without metrics (the
	// breaker keeps its fast path), but only the series Stats can give
	// are reported — bulwark.calls, bulwark.rejections (layer "breaker"),
	// bulwark.fallback.served, bulwark.idempotency.replays, the circuit
	// series and the load layers' series, counted since each executor's layers were made —
	// and there is no duration histogram, no retry or compensation
	// counter and no span event. false (the default): every series;
	// bulwark.calls, the breaker's rejections, the circuit series and
	// the load layers' series are read from Stats, the other counters and the histogram come from
	// the events.
	NoEvents bool
}
