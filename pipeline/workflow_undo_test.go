package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
)

// A step whose Undo fails keeps its key: its page still exists, so the
// rerun replays it instead of creating a second page under a new remote
// key. Once an Undo succeeds (or finds nothing to undo), the key is
// forgotten and the next run sends a new remote key.
func TestWorkflowFailedUndoKeepsTheKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		undo   func(svc *remote, id string) error
		panics bool
	}{
		{name: "permanent error", undo: func(*remote, string) error { return rollback.Permanent(errors.New("403 forbidden")) }},
		{name: "panic", undo: func(*remote, string) error { panic("notion client bug") }, panics: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newStack(t, pipeline.Reliable())
				svc := newRemote()
				var events recorder
				defer s.Subscribe(events.listen)()
				base := "page-for-retro"
				broken := true
				run := func() (r pipeline.Result[string], panicked any, err error) {
					defer func() { panicked = recover() }()
					_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
						r = pipeline.Execute(ctx, s, "notion", svc.createPage, pipeline.IdempotencyKey(base),
							pipeline.Undo("delete page", func(_ context.Context, id string) error {
								if broken {
									return tc.undo(svc, id)
								}
								return svc.deletePage(id)
							}))
						if r.Err != nil {
							return 0, r.Err
						}
						return 0, errStep3
					})
					return r, nil, err
				}

				r, panicked, err := run()
				if tc.panics {
					assert.Equal(t, "notion client bug", panicked)
				} else {
					require.ErrorIs(t, err, errStep3)
					var rerr *rollback.Error
					require.ErrorAs(t, err, &rerr)
					assert.Equal(t, "delete page", rerr.Failures[0].Step)
				}
				assert.False(t, r.Replayed)
				assert.True(t, svc.exists["page-1"], "the Undo failed: the page still exists")
				assert.Zero(t, events.countAll(bulwark.IdempotencyForgotten), "its key is kept")

				// The rerun replays the page that exists: no second page.
				r, _, _ = run()
				assert.True(t, r.Replayed)
				assert.Equal(t, "page-1", r.Value)
				assert.Equal(t, 1, svc.created)
				assert.Equal(t, []string{base}, svc.keys)

				// Now the Undo works: the page is deleted, the key
				// forgotten, and the next run sends a new remote key.
				broken = false
				_, _, err = run()
				require.ErrorIs(t, err, errStep3)
				assert.False(t, svc.exists["page-1"])
				assert.Equal(t, 1, events.countAll(bulwark.IdempotencyForgotten))
				r = pipeline.Execute(t.Context(), s, "notion", svc.createPage, pipeline.IdempotencyKey(base))
				require.NoError(t, r.Err)
				assert.Equal(t, "page-2", r.Value)
				assert.Equal(t, []string{base, idempotency.GenerationKey(base, 1)}, svc.keys)
			})
		})
	}
}

// An Undo that finds nothing to undo (rollback.ErrNoEffect: the page was
// deleted by hand) lets the key be forgotten: the effect does not exist.
func TestWorkflowUndoWithNoEffectForgetsTheKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		svc := newRemote()
		key := pipeline.IdempotencyKey("page-for-retro")
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			r := pipeline.Execute(ctx, s, "notion", svc.createPage, key,
				pipeline.Undo("delete page", func(_ context.Context, id string) error {
					return fmt.Errorf("%s is already gone: %w", id, rollback.ErrNoEffect)
				}))
			require.NoError(t, r.Err)
			return 0, errStep3
		})
		require.ErrorIs(t, err, errStep3)
		r := pipeline.Execute(t.Context(), s, "notion", svc.createPage, key)
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed)
		assert.Equal(t, "page-2", r.Value)
	})
}

// The same fault for the step's other compensations: one registered with
// rollback.OnRollback inside the function, and a saga step's Undo. When
// they fail, the effect still exists, so the key is kept and the rerun
// replays it instead of making a second page; a later step's failed
// compensation does not keep an earlier step's key.
func TestWorkflowFailedCompensationKeepsTheKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		w := newWorld()
		failing := true
		create := func(kind string) func(ctx context.Context) (string, error) {
			return func(ctx context.Context) (string, error) {
				id := w.create(kind)
				return id, rollback.OnRollback(ctx, "delete "+id, func(context.Context) error {
					if failing && kind == "card" {
						return rollback.Permanent(errors.New("403 forbidden"))
					}
					return w.delete(id)
				})
			}
		}
		workflow := func() error {
			_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
				for _, kind := range []string{"page", "card"} {
					if r := pipeline.Execute(ctx, s, "notion", create(kind), pipeline.IdempotencyKeyParts("create", kind)); r.Err != nil {
						return 0, r.Err
					}
				}
				return 0, errStep3
			})
			return err
		}
		require.Error(t, workflow())
		assert.Equal(t, []string{"create page-1", "create card-2", "delete page-1"}, w.log,
			"the card's delete failed; the page was deleted")
		failing = false
		r := pipeline.Execute(t.Context(), s, "notion", create("card"), pipeline.IdempotencyKeyParts("create", "card"))
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed, "the card still exists: its key was kept")
		assert.Equal(t, "card-2", r.Value)
		r = pipeline.Execute(t.Context(), s, "notion", create("page"), pipeline.IdempotencyKeyParts("create", "page"))
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed, "the page was undone: its key was forgotten")
		assert.Equal(t, "page-3", r.Value)
	})
}

func TestWorkflowSagaFailedUndoKeepsTheKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		w := newWorld()
		type state struct{ page string }
		key := pipeline.IdempotencyKeyParts("create-page", "retro")
		createPage := func(context.Context) (string, error) { return w.create("page"), nil }
		undoFails := true
		saga, err := rollback.NewSaga([]rollback.Step[state]{
			{Name: "create page",
				Do: func(ctx context.Context, st *state) error {
					r := pipeline.Execute(ctx, s, "notion", createPage, key)
					st.page = r.Value
					return r.Err
				},
				Undo: func(_ context.Context, st *state) error {
					if undoFails {
						return rollback.Permanent(errors.New("403 forbidden"))
					}
					return w.delete(st.page)
				}},
			{Name: "post", Do: func(context.Context, *state) error { return errStep3 }},
		})
		require.NoError(t, err)
		var st state
		require.Error(t, saga.Run(t.Context(), &st))
		r := pipeline.Execute(t.Context(), s, "notion", createPage, key)
		assert.True(t, r.Replayed, "the page still exists: its key was kept")
		assert.Equal(t, "page-1", r.Value)

		undoFails = false
		st = state{}
		require.Error(t, saga.Run(t.Context(), &st))
		r = pipeline.Execute(t.Context(), s, "notion", createPage, key)
		assert.False(t, r.Replayed, "undone this time: forgotten")
		assert.Equal(t, []string{"create page-1", "delete page-1", "create page-2"}, w.log)
	})
}
