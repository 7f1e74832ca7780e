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

		_, rest, ok := strings.Cut(s, "\nRun 1:")
		require.True(t, ok)
		run1, rest, ok := strings.Cut(rest, "\nRun 2:")
		require.True(t, ok)
		run2, run3, ok := strings.Cut(rest, "\nRun 3:")
		require.True(t, ok)

		// Run 1: the transient 503 is retried, the failed attempt's page
		// deleted before the retry; the permanent Slack error is not
		// retried and the workflow undoes the card, then the page.
		assert.Contains(t, run1, ""+
			"      notion PATCH /v1/blocks/page-1/children (3 blocks) → 503 Service Unavailable\n"+
			"      notion DELETE /v1/pages/page-1 → 200 OK\n"+
			"    failed attempt undone: delete page page-1\n"+
			"      notion POST /v1/pages \"Sprint 7 retro\" → page-2\n")
		assert.Contains(t, run1, "    executed: page-2 in 2 attempt(s), the failed attempt undone before the retry\n")
		assert.Contains(t, run1, "    executed: card-1 in 1 attempt(s)\n")
		assert.Equal(t, 1, strings.Count(run1, "chat.postMessage"), "a permanent error is not retried")
		assert.Contains(t, run1, "    FAILED after 1 attempt(s): slack: channel_not_found\n")
		// Each step's undo runs, newest first; forgetting the keys is not
		// a compensation and is not listed as one.
		assert.Contains(t, run1, ""+
			"  registered inside the pipeline were handed to the workflow's scope when the step succeeded)\n"+
			"      trello DELETE /1/cards/card-1 → 200 OK\n"+
			"    undone: delete card card-1\n"+
			"      notion DELETE /v1/pages/page-2 → 200 OK\n"+
			"    undone: delete page page-2\n")
		assert.NotContains(t, run1, "forget")
		assert.Contains(t, run1, "  result: step post-message: slack: channel_not_found (workflow rolled back: true)\n")
		assert.Contains(t, run1, "  notion pages: none; trello cards: none; slack messages: none; requests so far: 9\n")

		// Run 2: the undone steps run again (no stale replay of page-2).
		assert.NotContains(t, run2, "replayed")
		assert.Contains(t, run2, "    executed: page-3 in 1 attempt(s)\n")
		assert.Contains(t, run2, "    executed: card-2 in 1 attempt(s)\n")
		assert.Contains(t, run2, `"Retro notes: page-3, follow-up: card-2" → msg-1`)
		assert.Contains(t, run2, "  notion pages: page-3; trello cards: card-2; slack messages: msg-1; requests so far: 13\n")

		// Run 3: everything replayed, nothing sent.
		for _, line := range []string{
			"    replayed: page-3 (no request sent)\n",
			"    replayed: card-2 (no request sent)\n",
			"    replayed: msg-1 (no request sent)\n",
			"  notion pages: page-3; trello cards: card-2; slack messages: msg-1; requests so far: 13\n",
		} {
			assert.Contains(t, run3, line)
		}
		assert.NotContains(t, run3, "executed")
	})
}
