package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
)

// world is the remote side of a workflow: pages and cards that exist, and
// a log of every effect, kept outside bulwark.
type world struct {
	mu     sync.Mutex
	next   int
	exists map[string]bool
	log    []string
}

func newWorld() *world { return &world{exists: map[string]bool{}} }

func (w *world) create(kind string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	id := fmt.Sprintf("%s-%d", kind, w.next)
	w.exists[id] = true
	w.log = append(w.log, "create "+id)
	return id
}

func (w *world) delete(id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.exists[id] {
		return fmt.Errorf("%s: %w", id, rollback.ErrNoEffect)
	}
	delete(w.exists, id)
	w.log = append(w.log, "delete "+id)
	return nil
}

func (w *world) live() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.exists)
}

var errStep3 = bulwark.Final(errors.New("slack: channel archived"))

// Input 4: Do style. Run 1 completes steps 1 and 2 and dies (no rollback);
// run 2 replays them, step 3 fails, and both replayed steps are undone with
// their values, their keys forgotten; run 3 executes every step anew.
func TestWorkflowReplayedStepsAreUndone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		w := newWorld()
		var events recorder
		defer s.Subscribe(events.listen)()

		stepCall := func(ctx context.Context, executor, kind, reason string) pipeline.Result[string] {
			return pipeline.Execute(ctx, s, executor, func(context.Context) (string, error) { return w.create(kind), nil },
				pipeline.IdempotencyKeyParts("create-"+kind, reason),
				pipeline.Undo("delete "+kind, func(_ context.Context, id string) error { return w.delete(id) }))
		}
		workflow := func(ctx context.Context, failStep3 bool) ([]pipeline.Result[string], error) {
			var rs []pipeline.Result[string]
			_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
				for _, st := range []struct{ exec, kind string }{{"notion", "page"}, {"trello", "card"}} {
					r := stepCall(ctx, st.exec, st.kind, "sprint 7")
					rs = append(rs, r)
					if r.Err != nil {
						return 0, r.Err
					}
				}
				if failStep3 {
					return 0, errStep3
				}
				return 0, nil
			}, rollback.WithConfig(rollback.Config{OnEvent: events.listen}))
			return rs, err
		}

		// Run 1: the process dies after step 2 (no scope: nothing to roll back).
		require.NoError(t, stepCall(t.Context(), "notion", "page", "sprint 7").Err)
		require.NoError(t, stepCall(t.Context(), "trello", "card", "sprint 7").Err)
		require.Equal(t, []string{"create page-1", "create card-2"}, w.log)

		// Run 2: both replayed, step 3 fails, both undone, newest first.
		rs, err := workflow(t.Context(), true)
		require.ErrorIs(t, err, errStep3)
		require.Len(t, rs, 2)
		assert.True(t, rs[0].Replayed)
		assert.True(t, rs[1].Replayed)
		assert.Equal(t, []string{"create page-1", "create card-2", "delete card-2", "delete page-1"}, w.log)
		assert.Zero(t, w.live(), "no orphaned page or card")

		// Input 5: forgetting is not a compensation.
		assert.Equal(t, 2, events.countAll(bulwark.RollbackCompensated), "the two deletes")
		assert.Equal(t, 2, events.countAll(bulwark.IdempotencyForgotten), "each undone step's key is forgotten")
		for _, e := range events.all() {
			if e.Kind == bulwark.RollbackCompensated {
				assert.NotContains(t, e.Step, "forget")
			}
		}

		// Run 3: every step executes anew.
		rs, err = workflow(t.Context(), false)
		require.NoError(t, err)
		assert.False(t, rs[0].Replayed)
		assert.False(t, rs[1].Replayed)
		assert.Equal(t, []string{"create page-1", "create card-2", "delete card-2", "delete page-1", "create page-3", "create card-4"}, w.log)
		assert.Equal(t, 2, w.live())
	})
}

// Input 3: a saga. Run 1 records the keyed step and is interrupted; the
// rerun replays it, a later step fails, the step's Undo deletes the page,
// and the key is forgotten: the third run creates a new page.
func TestWorkflowSagaForgetsReplayedKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		w := newWorld()
		type state struct{ page string }
		createPage := func(ctx context.Context) (string, error) { return w.create("page"), nil }
		key := pipeline.IdempotencyKeyParts("create-page", "retro")
		saga := func(fail bool) *rollback.Saga[state] {
			g, err := rollback.NewSaga([]rollback.Step[state]{
				{Name: "create page",
					Do: func(ctx context.Context, st *state) error {
						r := pipeline.Execute(ctx, s, "notion", createPage, key)
						st.page = r.Value
						return r.Err
					},
					Undo: func(ctx context.Context, st *state) error { return w.delete(st.page) }},
				{Name: "post to slack", Do: func(context.Context, *state) error {
					if fail {
						return errStep3
					}
					return nil
				}},
			})
			require.NoError(t, err)
			return g
		}

		// Run 1, interrupted after the step: no rollback.
		require.NoError(t, pipeline.Execute(t.Context(), s, "notion", createPage, key).Err)
		// Run 2: replayed, then undone.
		var st state
		require.ErrorIs(t, saga(true).Run(t.Context(), &st), errStep3)
		assert.Equal(t, "page-1", st.page)
		assert.Equal(t, []string{"create page-1", "delete page-1"}, w.log)
		// Run 3: a new page, not the deleted one.
		st = state{}
		require.NoError(t, saga(false).Run(t.Context(), &st))
		assert.Equal(t, "page-2", st.page)
		assert.Equal(t, 1, w.live())
	})
}

// A replayed step that nothing compensates keeps its key: the rerun replays
// the effect that still exists instead of creating a second one.
func TestWorkflowReplayedStepWithoutUndoKeepsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		w := newWorld()
		create := func(ctx context.Context) (string, error) {
			id := w.create("page")
			return id, rollback.OnRollback(ctx, "delete "+id, func(context.Context) error { return w.delete(id) })
		}
		key := pipeline.IdempotencyKeyParts("create-page", "retro")
		require.NoError(t, pipeline.Execute(t.Context(), s, "notion", create, key).Err) // run 1 dies
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			r := pipeline.Execute(ctx, s, "notion", create, key)
			require.True(t, r.Replayed)
			return 0, errStep3
		})
		require.ErrorIs(t, err, errStep3)
		r := pipeline.Execute(t.Context(), s, "notion", create, key)
		assert.True(t, r.Replayed)
		assert.Equal(t, "page-1", r.Value)
		assert.Equal(t, []string{"create page-1"}, w.log, "one page, still there")
	})
}

// The Undo option through Middleware, and its invalid forms.
func TestUndoOption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		w := newWorld()
		create := pipeline.Middleware[string](s, "notion", pipeline.IdempotencyKey("k"),
			pipeline.Undo("delete page", func(_ context.Context, id string) error { return w.delete(id) }))(
			func(context.Context) (string, error) { return w.create("page"), nil })
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_, err := create(ctx)
			require.NoError(t, err)
			return 0, errStep3
		})
		require.ErrorIs(t, err, errStep3)
		assert.Equal(t, []string{"create page-1", "delete page-1"}, w.log)

		// Outside a workflow, Undo registers nothing.
		_, err = create(t.Context())
		require.NoError(t, err)

		fn := func(context.Context) (int, error) { return 1, nil }
		for name, opt := range map[string]pipeline.CallOption{
			"wrong type": pipeline.Undo("undo", func(context.Context, string) error { return nil }),
			"empty name": pipeline.Undo("", func(context.Context, int) error { return nil }),
			"nil func":   pipeline.Undo[int]("undo", nil),
		} {
			ran := false
			r := pipeline.Execute(t.Context(), s, "notion", func(ctx context.Context) (int, error) { ran = true; return fn(ctx) }, opt)
			assert.ErrorIs(t, r.Err, pipeline.ErrInvalid, name)
			assert.False(t, ran, name)
			_, err := pipeline.Middleware[int](s, "notion", opt)(fn)(t.Context())
			assert.ErrorIs(t, err, pipeline.ErrInvalid, name)
		}
	})
}
