package main

import (
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		require.NoError(t, run(&out))
		s := out.String()
		t.Log("\n" + s)

		exhausted := "ALERT [notion] retries exhausted after 3 attempts; last error: notion: 503 Service Unavailable\n"
		opened := "ALERT [notion] circuit opened (CLOSED → OPEN) after 3 consecutive failures; next probe in 1m0s\n"
		assert.Equal(t, 3, strings.Count(s, exhausted))
		assert.Equal(t, 1, strings.Count(s, opened))
		assert.Equal(t, 4, strings.Count(s, "ALERT "), "no other alert")
		assert.NotContains(t, s, "ALERT [slack]", "a retry that succeeds is no alert")

		// Alerts come before the outcome of the call that caused them.
		before, after, ok := strings.Cut(s, "4. ")
		require.True(t, ok)
		assert.Contains(t, before, exhausted+opened)
		assert.NotContains(t, after, "ALERT", "rejections are not retried, so they raise no alert")
		assert.Contains(t, after, "notion get-roadmap: from cache (attempts 0)\n")

		assert.Contains(t, s, `level=WARN msg="circuit breaker opened" executor=notion from=CLOSED to=OPEN`)
		assert.Contains(t, s, "slack post-message: live (attempts 2)\n")
		assert.Contains(t, s, "  alerts sent:   4\n")
		assert.Contains(t, s, "  fallback:used: notion=5\n")
		assert.Contains(t, s, "  retry:attempt: notion=6 slack=1\n")
	})
}
