package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun runs the demo in a synctest bubble: the same code and durations,
// on virtual time, so the table's times are exact and the test takes no
// wall time.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		start := time.Now()
		require.NoError(t, run(&out))
		took := time.Since(start)
		s := out.String()
		t.Log("\n" + s)

		assert.LessOrEqual(t, took, 5*time.Second, "the demo must finish within about 5s of real time")
		assert.Contains(t, s, "Durations are shortened for the demo")
		assert.Contains(t, s, "Production values: 5 failures within 1m, reset timeout 30s, 2 successes")

		for _, line := range []string{
			"0.05s    CLOSED     request:success                                 roadmap rev 1 (live)",
			"1.00s    -- notion goes down: every request now fails with 503 --",
			"1.05s    CLOSED     request:failure, fallback:used                  roadmap rev 4 (cached, 0.25s old)",
			// The fifth consecutive failure opens the circuit; the cache answers.
			"2.05s    OPEN       request:failure, circuit:opened, fallback:used  roadmap rev 4 (cached, 1.25s old)",
			// While OPEN, calls are rejected without reaching notion.
			"2.25s    OPEN       request:rejected, fallback:used                 roadmap rev 4 (cached, 1.45s old)",
			"3.00s    -- notion is back; the circuit does not know yet --",
			"3.50s    OPEN       request:rejected, fallback:used                 roadmap rev 4 (cached, 2.70s old)",
			// The reset timeout (1.5s after 2.05s) has passed: the next call is a probe.
			"3.80s    HALF_OPEN  circuit:half-open, request:success              roadmap rev 5 (live)",
			"4.05s    CLOSED     request:success, circuit:closed                 roadmap rev 6 (live)",
			"18 calls: 7 answered live, 11 from the fallback cache, 0 failed.",
		} {
			assert.Contains(t, s, line+"\n")
		}
		// Every cached row is consistent: its time minus the value's age
		// is when rev 4 was stored (0.80s), on every row.
		rows := regexp.MustCompile(`(?m)^(\d+\.\d\d)s .*\(cached, (\d+\.\d\d)s old\)$`).FindAllStringSubmatch(s, -1)
		require.Len(t, rows, 11)
		for _, r := range rows {
			at, _ := strconv.ParseFloat(r[1], 64)
			age, _ := strconv.ParseFloat(r[2], 64)
			assert.InDelta(t, 0.80, at-age, 0.001, "row %q", r[0])
		}
		assert.Equal(t, 5, strings.Count(s, "request:failure"))
		assert.Equal(t, 6, strings.Count(s, "request:rejected"))
		assert.Regexp(t, `notion +CLOSED +58\.3% +18 +5 +6 +1 +- +11\n`, s)
		assert.Contains(t, s, "(SUCCESS RATE counts the 12 calls that reached notion: 7 succeeded; the 6 it rejected while OPEN are not in it.)\n")
	})
}
