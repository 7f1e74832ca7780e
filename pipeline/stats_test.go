package pipeline_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
)

func TestStatsCountReplaysPerExecutor(t *testing.T) {
	s := newStack(t, pipeline.Reliable())
	ctx := t.Context()
	create := func(context.Context) (string, error) { return "card-42", nil }
	key := pipeline.IdempotencyKeyParts("create-card", "sprint 7")

	require.NoError(t, pipeline.Execute(ctx, s, "trello", create, key).Err)
	assert.Zero(t, s.Stats()["trello"].Replays, "the first call ran")

	for range 3 {
		require.True(t, pipeline.Execute(ctx, s, "trello", create, key).Replayed)
	}
	// With a subscriber too: the count does not depend on who listens.
	cancel := s.Subscribe(func(bulwark.Event) {})
	require.True(t, pipeline.Execute(ctx, s, "trello", create, key).Replayed)
	cancel()

	pipeline.Execute(ctx, s, "slack", create, key) // another executor: its own key and count

	st := s.Stats()
	assert.Equal(t, int64(4), st["trello"].Replays)
	assert.Zero(t, st["slack"].Replays)
}

// The Summary's REPLAYED column counts replays, which no other column
// does (a replay reaches no breaker), and appears only when an executor
// has an idempotency layer.
func TestSummaryReplayedColumn(t *testing.T) {
	s := newStack(t, pipeline.Reliable())
	ctx := t.Context()
	create := func(context.Context) (string, error) { return "card-42", nil }
	key := pipeline.IdempotencyKeyParts("create-card", "sprint 7")
	for range 3 {
		require.NoError(t, pipeline.Execute(ctx, s, "trello", create, key).Err)
	}
	require.NoError(t, s.Configure("plain", pipeline.Config{Breaker: &breaker.Config{}}))
	require.NoError(t, pipeline.Execute(ctx, s, "plain", create).Err)

	want := "" +
		"EXECUTOR  STATE   SUCCESS RATE  CALLS  FAILURES  REJECTIONS  OPENED  NEXT ATTEMPT  FROM CACHE  REPLAYED\n" +
		"plain     CLOSED  100.0%        1      0         0           0       -             -           -\n" +
		"trello    CLOSED  100.0%        1      0         0           0       -             -           2\n"
	assert.Equal(t, want, s.Summary())

	plain := newStack(t, pipeline.Config{Breaker: &breaker.Config{}})
	require.NoError(t, pipeline.Execute(ctx, plain, "notion", create).Err)
	assert.NotContains(t, plain.Summary(), "REPLAYED", "no executor has an idempotency layer")
}
