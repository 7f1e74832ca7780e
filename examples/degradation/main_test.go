package main

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
)

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		require.NoError(t, run(&out))
		s := out.String()
		t.Log("\n" + s)

		for _, line := range []string{
			`  "standup notes"     → page-1 after 0.04s`,
			`  "retro actions"     → card-1 (degraded) after 0.21s: notion failed after 2 attempts`,
			`  "release checklist" → card-2 (degraded) after 0.21s: notion failed after 2 attempts`,
			// Notion's circuit is open: straight to Trello, no Notion latency or retry wait.
			`  "oncall handover"   → card-3 (degraded) after 0.03s: notion's circuit is open: not called`,
			`  "design review"     → ERROR after 0.16s: notion's circuit is open: not called; trello failed after 2 attempts`,
			// Both open: the error comes at once.
			`  "team offsite"      → ERROR after 0.00s: notion's circuit is open: not called; trello's circuit is open: not called`,
			`      note not saved: breaker notion: circuit open; breaker trello: circuit open`,
			"4 notes saved (Notion 1, Trello 3), 3 refused with an error.",
			"Circuits: notion OPEN, trello OPEN.",
		} {
			assert.Contains(t, s, line+"\n")
		}
	})
}

// TestSaveErrorWrapsBothCauses checks the error a caller gets when both
// services are down can be inspected with errors.Is.
func TestSaveErrorWrapsBothCauses(t *testing.T) {
	stack, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{FailureThreshold: 1}})
	require.NoError(t, err)
	n := &notes{stack: stack, notion: &store{name: "notion", kind: "page"}, trello: &store{name: "trello", kind: "card"}}
	n.notion.setDown(true)
	n.trello.setDown(true)
	ctx := context.Background()
	_, _, err = n.save(ctx, "a")
	require.Error(t, err)
	assert.NotErrorIs(t, err, bulwark.ErrRejected)
	_, why, err := n.save(ctx, "b")
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.Equal(t, "notion's circuit is open: not called; trello's circuit is open: not called", why)
	assert.Zero(t, n.notion.count()+n.trello.count())
}
