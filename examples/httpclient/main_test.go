package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out strings.Builder
	require.NoError(t, run(&out))
	s := out.String()
	t.Log("\n" + s)

	part := func(n string) string {
		_, after, ok := strings.Cut(s, "\n"+n+". ")
		require.True(t, ok, "part %s", n)
		before, _, _ := strings.Cut(after, "\n\n")
		return before
	}

	p1 := part("1")
	assert.Equal(t, 3, strings.Count(p1, "server: GET /v1/pages/42"))
	assert.Contains(t, p1, "→ 429, Retry-After 0")
	assert.Contains(t, p1, `→ page 42 "Roadmap" [attempts 3, circuit CLOSED]`)

	p2 := part("2")
	assert.Contains(t, p2, "connection cut mid-body")
	assert.Contains(t, p2, "reading the body of 200 OK: unexpected EOF")
	assert.Contains(t, p2, `→ page 42 "Roadmap" [attempts 2, circuit CLOSED]`)

	p3 := part("3")
	assert.Equal(t, 1, strings.Count(p3, "server: GET /v1/pages/7 → 404"))
	assert.NotContains(t, p3, "retry:")
	assert.Contains(t, p3, "→ error: notion: 404 page not found [attempts 1, circuit CLOSED]")

	p4 := part("4")
	assert.Equal(t, 2, strings.Count(p4, `(Idempotency-Key create-q3-plan, body {"id":"","title":"Q3 plan"})`), "the whole body, twice")
	assert.Contains(t, p4, `→ created page-1 "Q3 plan" [attempts 2, circuit CLOSED]`)

	p5 := part("5")
	assert.NotContains(t, p5, "server:")
	assert.Contains(t, p5, "idempotency:replayed")
	assert.Contains(t, p5, `→ created page-1 "Q3 plan" [attempts 0, replayed, circuit CLOSED]`)

	p6 := part("6")
	assert.Equal(t, 1, strings.Count(p6, "server: POST /v1/comments → 503"))
	assert.Contains(t, p6, "→ error: notion: 503 Service Unavailable [attempts 1, circuit CLOSED]")

	p7 := part("7")
	assert.Equal(t, 3, strings.Count(p7, "→ 503"))
	assert.Contains(t, p7, "circuit:opened")
	assert.Contains(t, p7, `→ 200 {"id":"42","title":"Roadmap"}, Bulwark-Fallback-Age: 0 [attempts 3, from the fallback, circuit OPEN]`)

	_, p8, _ := strings.Cut(s, "\n8. ")
	assert.NotContains(t, p8, "server:")
	assert.Contains(t, p8, `→ page 42 "Roadmap" [attempts 0, from the fallback, rejected, circuit OPEN]`)
	assert.Contains(t, p8, "→ error: breaker notion: circuit open [attempts 0, rejected, circuit OPEN]")
}
