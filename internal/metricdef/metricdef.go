// Package metricdef holds what the otel and prometheus modules define
// alike, so that their series stay the same (prometheus/parity_test.go
// checks it): the duration histogram's default buckets, the check of
// user-given ones, its description, and which subscription to the Stack
// each mode takes.
package metricdef

import (
	"fmt"
	"math"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/pipeline"
)

// DefaultDurationBuckets are the bucket boundaries, in seconds, of the
// call duration histogram: those the OpenTelemetry semantic conventions
// advise for http.client.request.duration.
func DefaultDurationBuckets() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
}

// Buckets returns buckets, or the default ones when nil, and the reason
// they cannot be used, naming the field (Config.DurationBuckets): a bound
// that is not a finite number, or not greater than the one before.
func Buckets(buckets []float64) ([]float64, string) {
	if buckets == nil {
		return DefaultDurationBuckets(), ""
	}
	for i, b := range buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Sprintf("DurationBuckets[%d] is %v, must be a finite number of seconds", i, b)
		}
		if i > 0 && !(b > buckets[i-1]) {
			return nil, fmt.Sprintf("DurationBuckets[%d] is %v, must be greater than DurationBuckets[%d] (%v)", i, b, i-1, buckets[i-1])
		}
	}
	return buckets, ""
}

// DurationHelp is the description of the call duration histogram: of the
// breaker's sample of the calls, or of every call (all, for
// Config.AllDurations).
func DurationHelp(all bool) string {
	if all {
		return "Duration of calls through an executor's circuit breaker, retries included, by outcome (success, failure)."
	}
	return "Duration of a sample of the calls through an executor's circuit breaker (about 1 call in 64), retries included, by outcome (success, failure); its count is not the call count: use bulwark.calls for rates."
}

// Subscribe subscribes listener to stack as the mode says: not at all
// (noEvents: everything is read from Stats), to every event (all), or to
// the breaker's sample (the default). It returns the cancel function.
func Subscribe(stack *pipeline.Stack, noEvents, all bool, listener bulwark.Listener) (cancel func()) {
	switch {
	case noEvents:
		return func() {}
	case all:
		return stack.Subscribe(listener)
	default:
		return stack.SubscribeSampled(listener)
	}
}
