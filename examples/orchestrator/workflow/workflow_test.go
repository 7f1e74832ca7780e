package workflow_test

import (
	"io"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/examples/orchestrator/workflow"
	"github.com/bulwark-go/bulwark/idempotency"
)

func TestRunNilStore(t *testing.T) {
	assert.ErrorContains(t, workflow.Run(io.Discard, nil), "nil store")
}

// Run checks its own story: on a store that already holds the plan's
// records, run 1 replays instead of executing, and Run says so.
func TestRunNoticesAStoreInUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
		require.NoError(t, err)
		require.NoError(t, workflow.Run(io.Discard, store))
		assert.ErrorContains(t, workflow.Run(io.Discard, store), "run 1: step 1 replayed")
	})
}
