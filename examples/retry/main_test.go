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

		part := func(n string) string {
			_, after, ok := strings.Cut(s, n+". ")
			require.True(t, ok, "part %s", n)
			before, _, _ := strings.Cut(after, "\n\n")
			return before
		}

		// 1. Four attempts per call, one failure per call for the breaker.
		p1 := part("1")
		assert.Equal(t, 6, strings.Count(p1, "retry:attempt "))
		assert.Equal(t, 2, strings.Count(p1, "request:failure"))
		assert.Contains(t, p1, "attempt 3 failed (notion: 503 Service Unavailable); next attempt in 112.5ms\n")
		assert.Contains(t, p1, "→ attempts 4; breaker: calls 1, failures 1, CLOSED\n")
		assert.Contains(t, p1, "circuit:opened\n   → attempts 4; breaker: calls 2, failures 2, OPEN\n")
		assert.Contains(t, p1, "8 attempts reached notion; the circuit counted 2 failures.")

		// 2. The rejection is not retried.
		p2 := part("2")
		assert.Contains(t, p2, `→ attempts 0, rejected true, err "breaker notion: circuit open", errors.Is(err, bulwark.ErrRejected) = true`)
		assert.NotContains(t, p2, "retry:")

		// 3. Retry-After: the second attempt comes exactly 1s later.
		p3 := part("3")
		assert.Contains(t, p3, "0.00s  trello: GET /1/boards/sprint-7/cards → 429 Too Many Requests, Retry-After: 1\n")
		assert.Contains(t, p3, "next attempt in 1s\n")
		assert.Contains(t, p3, "1.00s  trello: GET /1/boards/sprint-7/cards → 200 OK\n")
		assert.Contains(t, p3, `→ "3 cards" after 2 attempts, 1.00s`)

		// 4. A 404 is not retried.
		p4 := part("4")
		assert.Equal(t, 1, strings.Count(p4, "→ 404 Not Found"))
		assert.NotContains(t, p4, "retry:attempt")
		assert.Contains(t, p4, `→ attempts 1, err "retry: HTTP 404 Not Found"`)
	})
}
