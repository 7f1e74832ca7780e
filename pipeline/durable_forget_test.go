package pipeline_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
)

// A keyed step of a journaled workflow whose process dies is undone by
// rollback.Recover in another process; the rerun must then execute the
// step again, not replay its stored result (which names a page that no
// longer exists).
func TestDurableRecoveryForgetsUndoneKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.NewMemory()
		reg := rollback.NewRegistry()
		svc := newRemote()
		deletePage, err := rollback.Register(reg, "delete page", func(_ context.Context, id string) error {
			return svc.deletePage(id)
		})
		require.NoError(t, err)
		s := newStack(t, pipeline.Reliable())
		require.NoError(t, s.RegisterForgetting(reg))
		rb := rollback.Config{Journal: j, Registry: reg, Owner: "svc-1", Lease: 10 * time.Second}
		key := pipeline.IdempotencyKey("page-for-retro")
		createPage := func(ctx context.Context) (string, error) {
			id, err := svc.createPage(ctx)
			if err != nil {
				return "", err
			}
			return id, deletePage.OnRollback(ctx, id)
		}

		// The workflow's process dies after the step: its scope never ends.
		ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(rb))
		require.NoError(t, err)
		r := pipeline.Execute(ctx, s, "notion", createPage, key)
		require.NoError(t, r.Err)
		assert.Equal(t, "page-1", r.Value)

		time.Sleep(11 * time.Second)
		rep, err := rollback.Recover(t.Context(), j, reg, rollback.WithConfig(rollback.Config{Owner: "recoverer"}))
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		assert.Equal(t, []string{"delete page"}, rep.Workflows[0].Compensated)
		assert.False(t, svc.exists["page-1"], "undone by the recoverer")

		r = pipeline.Execute(t.Context(), s, "notion", createPage, key)
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed, "the page was undone: the rerun must execute the step again")
		assert.Equal(t, "page-2", r.Value)
	})
}
