package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
)

// A keyed step whose stored result expired (TTL) executes again inside
// the same workflow: a second, real charge. Its Undo is registered like
// the first one's (only a replayed success is the same effect), so the
// rollback refunds both charges.
func TestWorkflowSecondExecutionOfKeyUndone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{Config: idempotency.Config{TTL: 20 * time.Millisecond}}})
		var n atomic.Int32
		var mu sync.Mutex
		refunded := map[string]int{}
		charge := func(context.Context) (string, error) { return fmt.Sprintf("ch_%d", n.Add(1)), nil }
		refund := func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			refunded[id]++
			return nil
		}
		var results []pipeline.Result[string]
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			for range 2 {
				results = append(results, pipeline.Execute(ctx, s, "payments", charge,
					pipeline.IdempotencyKey("order-7/charge"), pipeline.Undo("refund", refund)))
				time.Sleep(50 * time.Millisecond) // the stored result expires
			}
			return 0, errStep3
		})
		require.ErrorIs(t, err, errStep3)
		require.Len(t, results, 2)
		for _, r := range results {
			require.NoError(t, r.Err)
			assert.False(t, r.Replayed)
		}
		assert.Equal(t, int32(2), n.Load())
		assert.Equal(t, map[string]int{"ch_1": 1, "ch_2": 1}, refunded, "each executed charge refunded once")
	})
}

// A keyed step whose Undo could not be registered (the scope is full)
// fails; when the workflow calls it again, it replays and must fail
// again, not report success with no Undo registered (the charge would
// never be refunded, and the workflow told it succeeded).
func TestWorkflowUndoNotRegisteredStaysUnregistered(t *testing.T) {
	s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	p := &payments{}
	var errs []error
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		for range 2 { // a retry loop in user code
			r := pipeline.Execute(ctx, s, "payments", p.charge,
				pipeline.IdempotencyKey("order-7/charge"), pipeline.Undo("refund", p.refund))
			errs = append(errs, r.Err)
			if r.Err == nil {
				break
			}
		}
		return 0, errStep3
	}, rollback.WithConfig(rollback.Config{MaxCompensations: 1}))
	require.ErrorIs(t, err, errStep3)
	require.Len(t, errs, 2, "the first call failed, so the loop called again")
	for i, e := range errs {
		require.ErrorIs(t, e, rollback.ErrTooManyCompensations, "call %d", i+1)
		assert.ErrorContains(t, e, `Undo "refund" not registered`, "call %d", i+1)
	}
	assert.Equal(t, int32(1), p.charges.Load(), "the second call replayed")
}

// A keyed step that nothing undoes (no Undo, no compensation registered
// by its function: an e-mail cannot be unsent) keeps its key when the
// workflow rolls back, whether it executed or replayed: its effect still
// exists, and the rerun replays it instead of sending the e-mail again.
func TestWorkflowExecutedStepNothingUndoesKeepsKey(t *testing.T) {
	s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	var sent atomic.Int32
	send := func(context.Context) (string, error) { sent.Add(1); return "msg-1", nil }
	var replayed []bool
	workflow := func(ctx context.Context) (int, error) {
		r := pipeline.Execute(ctx, s, "mail", send, pipeline.IdempotencyKey("order-7/confirmation"))
		if r.Err != nil {
			return 0, r.Err
		}
		replayed = append(replayed, r.Replayed)
		return 0, errStep3
	}
	for range 2 {
		_, err := rollback.Do(t.Context(), workflow)
		require.ErrorIs(t, err, errStep3)
	}
	assert.Equal(t, int32(1), sent.Load(), "the e-mail was sent once")
	assert.Equal(t, []bool{false, true}, replayed)
}

// A keyed step whose function registers a compensation while it executes
// (with OnRollback, directly or from a nested scope that committed) is
// undone by it: its key is forgotten, and the rerun executes it anew.
func TestWorkflowStepUndoneByItsFunctionForgetsKey(t *testing.T) {
	for name, register := range map[string]func(ctx context.Context, undo func(context.Context) error) error{
		"OnRollback": func(ctx context.Context, undo func(context.Context) error) error {
			return rollback.OnRollback(ctx, "delete", undo)
		},
		"nested scope": func(ctx context.Context, undo func(context.Context) error) error {
			_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
				return 0, rollback.OnRollback(ctx, "delete", undo)
			})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
			var created, deleted atomic.Int32
			create := func(ctx context.Context) (string, error) {
				id := fmt.Sprintf("page-%d", created.Add(1))
				return id, register(ctx, func(context.Context) error { deleted.Add(1); return nil })
			}
			var replayed []bool
			workflow := func(ctx context.Context) (int, error) {
				r := pipeline.Execute(ctx, s, "notion", create, retroKey)
				if r.Err != nil {
					return 0, r.Err
				}
				replayed = append(replayed, r.Replayed)
				return 0, errStep3
			}
			for range 2 {
				_, err := rollback.Do(t.Context(), workflow)
				require.ErrorIs(t, err, errStep3)
			}
			assert.Equal(t, int32(2), created.Load(), "forgotten: the rerun executed")
			assert.Equal(t, int32(2), deleted.Load())
			assert.Equal(t, []bool{false, false}, replayed)
		})
	}
}

// In a journaled workflow the durable forgetting guard follows the same
// rule: a step that nothing undoes has its guard discarded, in process
// and at recovery, and keeps its key; the step that registered a durable
// compensation has its key forgotten.
func TestDurableStepNothingUndoesKeepsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newDurableWorld(t)
		require.NoError(t, w.recoverer.RegisterForgetting(w.recReg))
		var sent atomic.Int32
		send := func(context.Context) (string, error) { sent.Add(1); return "msg-1", nil }
		mailKey := pipeline.IdempotencyKey("order-7/confirmation")

		// In process.
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			require.NoError(t, pipeline.Execute(ctx, w.owner, "mail", send, mailKey).Err)
			return 0, errStep3
		}, rollback.WithConfig(w.rb))
		require.ErrorIs(t, err, errStep3)
		assert.Equal(t, 0, w.j.Len())
		r := pipeline.Execute(t.Context(), w.recoverer, "mail", send, mailKey)
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed, "kept in process")

		// At recovery: the process dies after both steps.
		mailKey2 := pipeline.IdempotencyKey("order-8/confirmation")
		w.crash(t, func(ctx context.Context) {
			require.NoError(t, pipeline.Execute(ctx, w.owner, "notion", w.createPage, retroKey).Err)
			require.NoError(t, pipeline.Execute(ctx, w.owner, "mail", send, mailKey2).Err)
		})
		w.recover(t)
		assert.False(t, w.svc.exists["page-1"], "the page was deleted")
		r = pipeline.Execute(t.Context(), w.recoverer, "mail", send, mailKey2)
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed, "kept at recovery")
		assert.Equal(t, int32(2), sent.Load(), "one e-mail per order")
		assert.False(t, w.rerun(t).Replayed, "the undone page's key was forgotten")
	})
}

// A replay whose forgetting the scope refused (a nested scope that was
// full) marks nothing: the next replay of the key in the saga step, whose
// forgetting is registered, arms it, so the key is forgotten once the
// step's Undo ran and the rerun charges anew.
func TestWorkflowReplayWithoutForgettingMarksNothing(t *testing.T) {
	s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	p := &payments{}
	key := pipeline.IdempotencyKey("order-7/charge")
	require.NoError(t, pipeline.Execute(t.Context(), s, "payments", p.charge, key).Err) // an earlier run
	nop := func(context.Context) error { return nil }
	g, err := rollback.NewSaga([]rollback.Step[struct{}]{
		{Name: "charge", Do: func(ctx context.Context, _ *struct{}) error {
			nctx, sc, err := rollback.Begin(ctx, rollback.WithConfig(rollback.Config{MaxCompensations: 1}))
			if err != nil {
				return err
			}
			if err := rollback.OnRollback(nctx, "release hold", nop); err != nil {
				return err
			}
			r := pipeline.Execute(nctx, s, "payments", p.charge, key) // the scope is full: no forgetting
			if r.Err != nil || !r.Replayed {
				return fmt.Errorf("first replay: %v %v", r.Err, r.Replayed)
			}
			if err := sc.Commit(); err != nil {
				return err
			}
			r = pipeline.Execute(ctx, s, "payments", p.charge, key)
			if r.Err != nil || !r.Replayed {
				return fmt.Errorf("second replay: %v %v", r.Err, r.Replayed)
			}
			return nil
		}, Undo: func(ctx context.Context, _ *struct{}) error { return p.refund(ctx, "ch_1") }},
		{Name: "reserve", Do: func(context.Context, *struct{}) error { return errStep3 }},
	})
	require.NoError(t, err)
	require.ErrorIs(t, g.Run(t.Context(), &struct{}{}), errStep3)
	assert.Equal(t, int32(1), p.refunds.Load())
	r := pipeline.Execute(t.Context(), s, "payments", p.charge, key)
	require.NoError(t, r.Err)
	assert.False(t, r.Replayed, "the refunded charge's key was forgotten")
	assert.Equal(t, int32(2), p.charges.Load())
}
