package main

import (
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The keys of the plan's steps, shortened as the output shows them. They
// are idempotency.Key(executor, step name, reasoning): stable by design,
// since stored records are found by them.
const (
	pageKey = "4a80…b0"
	cardKey = "7d86…b4"
	postKey = "0fb0…56"
)

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		require.NoError(t, run(&out, nil))
		s := out.String()
		t.Log("\n" + s)

		intro, rest, ok := strings.Cut(s, "\n=== Run 1:")
		require.True(t, ok)
		run1, rest, ok := strings.Cut(rest, "\n=== Run 2:")
		require.True(t, ok)
		run2, run3, ok := strings.Cut(rest, "\n=== Run 3:")
		require.True(t, ok)

		for _, k := range []string{pageKey, cardKey, postKey} {
			assert.Contains(t, intro, " key "+k+"\n")
		}

		// Run 1: steps 1 and 2 executed, then the process dies: nothing
		// is undone, the page and the card stay.
		assert.Contains(t, run1, `notion POST /v1/pages "Sprint 7 retro" key `+pageKey+" → page-1\n")
		assert.Contains(t, run1, "    executed: page-1 in 1 attempt, key "+pageKey+" (generation 0)\n")
		assert.Contains(t, run1, "    executed: card-1 in 1 attempt, key "+cardKey+" (generation 0)\n")
		assert.Contains(t, run1, "  ✗ the process dies")
		assert.NotContains(t, run1, "slack")
		assert.NotContains(t, run1, "undone")
		assert.Contains(t, run1, "  the services hold: pages: page-1; uploads: file-1; cards: card-1; messages: none\n")

		// Run 2: steps 1 and 2 replayed without a request, step 3's final
		// answer not retried, then card and page undone, newest first,
		// each followed by the forgetting of its key, which is not an undo.
		assert.Contains(t, run2, ""+
			"  ▸ step 1: create-page on notion\n"+
			"    replayed: page-1 (no request sent)\n"+
			"  ▸ step 2: create-card on trello\n"+
			"    replayed: card-1 (no request sent)\n"+
			"  ▸ step 3: post-message on slack\n")
		assert.NotContains(t, run2, "POST /v1/", "step 1 sent nothing")
		assert.NotContains(t, run2, "POST /1/cards", "step 2 sent nothing")
		assert.Equal(t, 1, strings.Count(run2, "chat.postMessage"), "a final answer is not retried")
		assert.Contains(t, run2, ""+
			"      trello DELETE /1/cards/card-1 → 200 OK\n"+
			"    undone: delete card\n"+
			"    idempotency:forgotten key "+cardKey+": its next execution gets a new key\n"+
			"      notion DELETE /v1/pages/page-1 → 200 OK (and its upload file-1)\n"+
			"    undone: delete page\n"+
			"    idempotency:forgotten key "+pageKey+": its next execution gets a new key\n")
		assert.Equal(t, 2, strings.Count(run2, "undone:"), "forgetting is not an undo")
		assert.Contains(t, run2, "  result: rolled back (step post-message: slack: is_archived)\n")
		assert.Contains(t, run2, "  the services hold: nothing\n")

		// Run 3: every step executed; the undone ones under generation 1
		// of their keys, the 503 retried under the same key after its
		// attempt's upload was undone; one page, card and message remain.
		assert.NotContains(t, run3, "replayed")
		assert.Contains(t, run3, ""+
			`      notion POST /v1/pages "Sprint 7 retro" key `+pageKey+".1 → 503 Service Unavailable\n"+
			"      notion DELETE /v1/file_uploads/file-2 → 200 OK\n"+
			"    failed attempt undone: delete upload file-2 (its OnRollback)\n"+
			"    retry: attempt 1 failed; the next one sends the same key\n"+
			"      notion POST /v1/file_uploads retro-template.png → file-3\n"+
			`      notion POST /v1/pages "Sprint 7 retro" key `+pageKey+".1 → page-2\n"+
			"    executed: page-2 in 2 attempts, key "+pageKey+".1 (generation 1)\n")
		assert.Contains(t, run3, "    executed: card-2 in 1 attempt, key "+cardKey+".1 (generation 1)\n")
		assert.Contains(t, run3, `"Retro: page-2 · follow-up: card-2" key `+postKey+" → msg-1\n")
		assert.Contains(t, run3, "    executed: msg-1 in 1 attempt, key "+postKey+" (generation 0)\n")
		assert.Contains(t, run3, "  result: done\n")
		assert.Contains(t, run3, "  the services hold: pages: page-2; uploads: file-3; cards: card-2; messages: msg-1\n")

		// No service ever answered with an old key's first answer.
		assert.NotContains(t, s, "key seen")
	})
}

func TestRunArguments(t *testing.T) {
	var out strings.Builder
	assert.ErrorIs(t, run(&out, []string{"-redis", "localhost:6379"}), errUseRedisVariant)
	assert.ErrorContains(t, run(&out, []string{"-verbose"}), "-verbose")
	assert.ErrorContains(t, run(&out, []string{"now"}), `unexpected argument "now"`)
	assert.Empty(t, out.String(), "nothing runs")
	require.NoError(t, run(&out, []string{"-h"}))
	assert.Contains(t, out.String(), "on Redis: cd examples/orchestrator/redis && go run . -redis ADDR\n")
	assert.NotContains(t, out.String(), "Run 1")
}
