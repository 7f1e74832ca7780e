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
