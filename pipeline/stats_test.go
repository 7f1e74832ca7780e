package pipeline_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
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
