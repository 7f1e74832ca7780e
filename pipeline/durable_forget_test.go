package pipeline_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
)

// durableWorld is a remote service, a journal and a shared idempotency
// store, with two "processes": the owner that runs workflows and dies,
// and the recoverer, each with its own Stack and Registry.
type durableWorld struct {
	svc        *remote
	j          *journaltest.Memory
	owner      *pipeline.Stack
	ownerReg   *rollback.Registry
	deletePage rollback.Compensation[string]
	rb         rollback.Config
	recoverer  *pipeline.Stack
	recReg     *rollback.Registry
	failDelete atomic.Int32 // the next deletes that fail
}

func newDurableWorld(t *testing.T) *durableWorld {
	w := &durableWorld{svc: newRemote(), j: journaltest.NewMemory()}
	store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	require.NoError(t, err)
	cfg := pipeline.Reliable()
	cfg.Idempotency.Store = store // shared by both processes
	del := func(_ context.Context, id string) error {
		if w.failDelete.Add(-1) >= 0 {
			return rollback.Permanent(errors.New("notion: 503"))
		}
		return w.svc.deletePage(id)
	}
	w.owner, w.ownerReg = newStack(t, cfg), rollback.NewRegistry()
	w.deletePage, err = rollback.Register(w.ownerReg, "delete page", del)
	require.NoError(t, err)
	require.NoError(t, w.owner.RegisterForgetting(w.ownerReg))
	w.recoverer, w.recReg = newStack(t, cfg), rollback.NewRegistry()
	_, err = rollback.Register(w.recReg, "delete page", del)
	require.NoError(t, err)
	w.rb = rollback.Config{Journal: w.j, Registry: w.ownerReg, Owner: "svc-1", Lease: 10 * time.Second}
	return w
}

// createPage is the keyed step's function: it creates a page and
// registers its durable compensation.
func (w *durableWorld) createPage(ctx context.Context) (string, error) {
	id, err := w.svc.createPage(ctx)
	if err != nil {
		return "", err
	}
	return id, w.deletePage.OnRollback(ctx, id)
}

var retroKey = pipeline.IdempotencyKey("page-for-retro")

// crash runs steps in a journaled workflow whose process then dies (the
// scope never ends), and lets its lease expire.
func (w *durableWorld) crash(t *testing.T, steps func(ctx context.Context)) {
	ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(w.rb))
	require.NoError(t, err)
	steps(ctx)
	time.Sleep(11 * time.Second)
}

func (w *durableWorld) recover(t *testing.T) rollback.RecoveredWorkflow {
	rep, err := rollback.Recover(t.Context(), w.j, w.recReg, rollback.WithConfig(rollback.Config{Owner: "recoverer", Lease: time.Minute}))
	require.NoError(t, err)
	require.Len(t, rep.Workflows, 1)
	return rep.Workflows[0]
}

// rerun makes the keyed call again, in the recoverer's process.
func (w *durableWorld) rerun(t *testing.T) pipeline.Result[string] {
	r := pipeline.Execute(t.Context(), w.recoverer, "notion", w.createPage, retroKey)
	require.NoError(t, r.Err)
	return r
}

// A keyed step of a journaled workflow whose process dies is undone by
// rollback.Recover in another process; the rerun must then execute the
// step again, not replay its stored result (which names a page that no
// longer exists).
func TestDurableRecoveryForgetsUndoneKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newDurableWorld(t)
		require.NoError(t, w.recoverer.RegisterForgetting(w.recReg))
		w.crash(t, func(ctx context.Context) {
			r := pipeline.Execute(ctx, w.owner, "notion", w.createPage, retroKey)
			require.NoError(t, r.Err)
			assert.Equal(t, "page-1", r.Value)
		})
		rw := w.recover(t)
		assert.Equal(t, []string{"delete page"}, rw.Compensated)
		assert.True(t, rw.Finished)
		assert.False(t, w.svc.exists["page-1"], "undone by the recoverer")

		r := w.rerun(t)
		assert.False(t, r.Replayed, "the page was undone: the rerun must execute the step again")
		assert.Equal(t, "page-2", r.Value)
		assert.Equal(t, []string{"page-for-retro", idempotency.GenerationKey("page-for-retro", 1)}, w.svc.keys,
			"under a new remote key")
	})
}

// A step whose compensation fails at recovery keeps its key, as in
// process: its page still exists, and a rerun replays it instead of
// creating a second one. The recovery that undoes the step forgets it.
func TestDurableRecoveryKeepsKeyOfFailedUndo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newDurableWorld(t)
		require.NoError(t, w.recoverer.RegisterForgetting(w.recReg))
		w.crash(t, func(ctx context.Context) {
			require.NoError(t, pipeline.Execute(ctx, w.owner, "notion", w.createPage, retroKey).Err)
		})
		w.failDelete.Store(1) // the first recovery's (a permanent error: one attempt)
		rw := w.recover(t)
		require.Len(t, rw.Failures, 1)
		assert.Equal(t, []string{pipeline.ForgetGuard}, rw.Held)
		assert.True(t, w.svc.exists["page-1"])
		r := w.rerun(t)
		assert.True(t, r.Replayed, "the page still exists: replayed")
		assert.Equal(t, "page-1", r.Value)

		time.Sleep(time.Minute)
		rw = w.recover(t)
		assert.Equal(t, []string{"delete page"}, rw.Compensated)
		assert.True(t, rw.Finished)
		r = w.rerun(t)
		assert.False(t, r.Replayed, "undone now: forgotten")
		assert.Equal(t, "page-2", r.Value)
	})
}

// A step that replayed a stored result, with nothing to undo it, keeps
// its key after a recovery: its effect (made by an earlier, committed
// run) still exists.
func TestDurableRecoveryKeepsReplayedKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newDurableWorld(t)
		require.NoError(t, w.recoverer.RegisterForgetting(w.recReg))
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (string, error) {
			r := pipeline.Execute(ctx, w.owner, "notion", w.createPage, retroKey)
			return r.Value, r.Err
		}, rollback.WithConfig(w.rb))
		require.NoError(t, err)
		assert.Equal(t, 0, w.j.Len(), "committed")

		w.crash(t, func(ctx context.Context) {
			r := pipeline.Execute(ctx, w.owner, "notion", w.createPage, retroKey)
			require.NoError(t, r.Err)
			require.True(t, r.Replayed)
			// The next step journals a compensation, so that the workflow
			// has something to recover.
			_, err := w.deletePage.Before(ctx, "page-x")
			require.NoError(t, err)
		})
		rw := w.recover(t)
		assert.Equal(t, []string{"delete page"}, rw.Compensated, "page-x only")
		assert.Empty(t, rw.NoEffect, "the forgetting guard did not run")
		assert.Empty(t, rw.Failures)
		assert.True(t, w.svc.exists["page-1"])
		r := w.rerun(t)
		assert.True(t, r.Replayed, "the committed page still exists: its key is kept")
		assert.Equal(t, "page-1", r.Value)
	})
}

// A step undone by an Undo option (a closure, lost with its process)
// keeps its key after a recovery: its page was not deleted. In process
// the Undo runs and the key is forgotten.
func TestDurableRecoveryKeepsKeyOfClosureUndo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newDurableWorld(t)
		require.NoError(t, w.recoverer.RegisterForgetting(w.recReg))
		undo := pipeline.Undo("delete page", func(_ context.Context, id string) error { return w.svc.deletePage(id) })
		plain := func(ctx context.Context) (string, error) { return w.svc.createPage(ctx) }
		w.crash(t, func(ctx context.Context) {
			require.NoError(t, pipeline.Execute(ctx, w.owner, "notion", plain, retroKey, undo).Err)
			_, err := w.deletePage.Before(ctx, "page-x") // something to recover
			require.NoError(t, err)
		})
		w.recover(t)
		assert.True(t, w.svc.exists["page-1"], "the closure was lost")
		r := w.rerun(t)
		assert.True(t, r.Replayed, "its key is kept")

		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			require.NoError(t, pipeline.Execute(ctx, w.owner, "notion", plain, pipeline.IdempotencyKey("other"), undo).Err)
			return 0, errStep3
		}, rollback.WithConfig(w.rb))
		require.ErrorIs(t, err, errStep3)
		assert.False(t, w.svc.exists["page-2"], "undone in process")
		r = pipeline.Execute(t.Context(), w.owner, "notion", plain, pipeline.IdempotencyKey("other"))
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed, "forgotten in process")
		assert.Equal(t, 0, w.j.Len())
	})
}

// A recoverer that did not call RegisterForgetting reports the guard as
// failed (ErrNotRegistered) and leaves it in the journal: the key is not
// silently kept. A later recoverer with it forgets the key.
func TestDurableRecoveryWithoutRegisterForgetting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newDurableWorld(t)
		w.crash(t, func(ctx context.Context) {
			require.NoError(t, pipeline.Execute(ctx, w.owner, "notion", w.createPage, retroKey).Err)
		})
		rw := w.recover(t)
		assert.Equal(t, []string{"delete page"}, rw.Compensated)
		require.Len(t, rw.Failures, 1)
		assert.Equal(t, pipeline.ForgetGuard, rw.Failures[0].Step)
		assert.ErrorIs(t, rw.Failures[0].Err, rollback.ErrNotRegistered)
		assert.False(t, rw.Finished)

		require.NoError(t, w.recoverer.RegisterForgetting(w.recReg))
		time.Sleep(time.Minute)
		rw = w.recover(t)
		assert.Equal(t, []string{pipeline.ForgetGuard}, rw.NoEffect)
		assert.True(t, rw.Finished)
		r := w.rerun(t)
		assert.False(t, r.Replayed)
		assert.Equal(t, "page-2", r.Value)
	})
}

// In process, a journaled workflow forgets the keys of the steps it
// undid and leaves nothing in the journal; a committed one keeps them.
func TestDurableWorkflowInProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newDurableWorld(t)
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			require.NoError(t, pipeline.Execute(ctx, w.owner, "notion", w.createPage, retroKey).Err)
			return 0, errStep3
		}, rollback.WithConfig(w.rb))
		require.ErrorIs(t, err, errStep3)
		assert.Equal(t, 0, w.j.Len())
		assert.False(t, w.svc.exists["page-1"])
		r := w.rerun(t)
		assert.False(t, r.Replayed, "forgotten in process")
		assert.Equal(t, "page-2", r.Value)

		// A failed step: its guard is discarded, nothing is forgotten.
		boom := errors.New("notion: 400")
		_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			r := pipeline.Execute(ctx, w.owner, "notion", func(context.Context) (string, error) { return "", boom },
				pipeline.IdempotencyKey("bad"))
			return 0, r.Err
		}, rollback.WithConfig(w.rb))
		require.ErrorIs(t, err, boom)
		assert.Equal(t, 0, w.j.Len())
	})
}

// A keyed call in a journaled workflow whose Registry lacks the
// forgetting guard fails before it runs, with an error saying what to do.
func TestDurableWorkflowNeedsRegisterForgetting(t *testing.T) {
	w := newDurableWorld(t)
	rb := w.rb
	rb.Registry = w.recReg // no RegisterForgetting there
	ran := false
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		r := pipeline.Execute(ctx, w.owner, "notion", func(context.Context) (string, error) { ran = true; return "", nil }, retroKey)
		return 0, r.Err
	}, rollback.WithConfig(rb))
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	assert.ErrorContains(t, err, "RegisterForgetting")
	assert.False(t, ran)

	assert.ErrorIs(t, w.owner.RegisterForgetting(w.ownerReg), pipeline.ErrInvalid, "twice")
	assert.ErrorIs(t, w.owner.RegisterForgetting(nil), pipeline.ErrInvalid)
	var nilStack *pipeline.Stack
	assert.ErrorIs(t, nilStack.RegisterForgetting(w.ownerReg), pipeline.ErrInvalid)
}

// A saga step whose durable Compensation (rollback.UndoWith, journaled
// before the step's Do) undoes a keyed call: the call's key is forgotten
// only if that Compensation succeeded, in process and at recovery, with a
// journal or without.
func TestSagaCompensationFailureKeepsTheKey(t *testing.T) {
	for _, journaled := range []bool{false, true} {
		t.Run(map[bool]string{false: "in memory", true: "journaled"}[journaled], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newDurableWorld(t)
				type trip struct{ Page string }
				// The compensation deletes the page created under the
				// step's remote key, which the step's Do chooses up front.
				saga, err := rollback.NewSaga([]rollback.Step[trip]{
					{Name: "create page",
						Do: func(ctx context.Context, st *trip) error {
							r := pipeline.Execute(ctx, w.owner, "notion", w.svc.createPage, retroKey)
							st.Page = r.Value
							return r.Err
						},
						Compensation: rollback.UndoWith(w.deletePage, func(*trip) string { return "page-1" })},
					{Name: "post", Do: func(context.Context, *trip) error { return errStep3 }},
				}, rollback.WithConfig(map[bool]rollback.Config{false: {}, true: w.rb}[journaled]))
				require.NoError(t, err)
				w.failDelete.Store(1)
				require.Error(t, saga.Run(t.Context(), &trip{}))
				assert.True(t, w.svc.exists["page-1"], "the compensation failed")
				r := pipeline.Execute(t.Context(), w.owner, "notion", w.svc.createPage, retroKey)
				require.NoError(t, r.Err)
				assert.True(t, r.Replayed, "the page still exists: its key is kept")

				if journaled {
					require.NoError(t, w.recoverer.RegisterForgetting(w.recReg))
					rw := w.recover(t)
					assert.Equal(t, []string{"delete page"}, rw.Compensated)
					assert.False(t, w.svc.exists["page-1"])
					assert.False(t, w.rerun(t).Replayed, "undone by the recoverer: forgotten")
				}
			})
		})
	}
}
