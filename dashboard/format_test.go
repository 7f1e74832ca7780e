package dashboard

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The page's script formats the same way (page.html, latency()).
func TestFormatLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "-",
		-time.Second:             "-",
		1500 * time.Microsecond:  "1.5 ms",
		999 * time.Millisecond:   "999.0 ms",
		time.Second:              "1.0 s",
		7036 * time.Millisecond:  "7.0 s",
		59900 * time.Millisecond: "59.9 s",
		90 * time.Second:         "90 s",
	} {
		assert.Equal(t, want, formatLatency(d), "%v", d)
	}
}

func TestNextProbe(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ex   Executor
		want string
	}{
		{Executor{State: "CLOSED"}, "-"},
		{Executor{State: "OPEN", Forced: true}, "forced open"},
		{Executor{State: "HALF_OPEN"}, "probing"},
		{Executor{State: "OPEN", NextProbe: now}, "due"},
		{Executor{State: "OPEN", NextProbe: now.Add(-time.Second)}, "due"},
		{Executor{State: "OPEN", NextProbe: now.Add(1500 * time.Millisecond)}, "in 2s"},
		{Executor{State: "OPEN", NextProbe: now.Add(time.Minute)}, "in 60s"},
	} {
		assert.Equal(t, tc.want, nextProbe(tc.ex, now), "%+v", tc.ex)
	}
}

// The page's script formats the same way (page.html, load()); the
// browser test checks it on the live page.
func TestFormatLoad(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		ex   Executor
		want string
		warn bool
	}{
		{"no load layer", Executor{Breaker: true, State: "OPEN"}, "-", false},
		{"bulkhead without a queue", Executor{Bulkhead: &BulkheadStats{MaxConcurrent: 10, InFlight: 3}}, "3/10 in flight · 0 full", false},
		{"bulkhead with a queue", Executor{Bulkhead: &BulkheadStats{MaxConcurrent: 10, MaxWaiting: 5, InFlight: 9, Waiting: 0, Rejected: 2}}, "9/10 in flight · 0 waiting · 2 full", false},
		{"full bulkhead", Executor{Bulkhead: &BulkheadStats{MaxConcurrent: 2, MaxWaiting: 5, InFlight: 2, Waiting: 5, Rejected: 7}}, "2/2 in flight · 5 waiting · 7 full", true},
		{"limiter", Executor{RateLimit: &RateLimitStats{Rejected: 7}}, "7 limited", false},
		{"pause ended", Executor{RateLimit: &RateLimitStats{PausedUntil: now}}, "0 limited", false},
		{"pause ended before now", Executor{RateLimit: &RateLimitStats{PausedUntil: now.Add(-time.Second)}}, "0 limited", false},
		{"paused, rounded up", Executor{RateLimit: &RateLimitStats{Rejected: 1, PausedUntil: now.Add(2001 * time.Millisecond)}}, "1 limited · paused 3s", true},
		{"paused for long", Executor{RateLimit: &RateLimitStats{PausedUntil: now.Add(5 * time.Minute)}}, "0 limited · paused 300s", true},
		{"budget", Executor{RetryBudget: &RetryBudgetStats{Calls: 9, Retries: 2, Refused: 4}}, "budget: 4 refused", false},
		{"every layer", Executor{
			Bulkhead:    &BulkheadStats{MaxConcurrent: 10, MaxWaiting: 2, InFlight: 3, Waiting: 2, Rejected: 5},
			RateLimit:   &RateLimitStats{Rejected: 7, PausedUntil: now.Add(3 * time.Second)},
			RetryBudget: &RetryBudgetStats{Refused: 4},
		}, "3/10 in flight · 2 waiting · 5 full · 7 limited · paused 3s · budget: 4 refused", true},
	} {
		text, warn := formatLoad(tc.ex, now)
		assert.Equal(t, tc.want, text, tc.name)
		assert.Equal(t, tc.warn, warn, tc.name)
	}
}
