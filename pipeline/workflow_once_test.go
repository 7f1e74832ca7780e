package pipeline_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
)

// payments is a charge API for the tests of one effect reported twice
// in a workflow: it counts charges and refunds.
type payments struct {
	charges, refunds atomic.Int32
}

func (p *payments) charge(context.Context) (string, error) {
	p.charges.Add(1)
	return "ch_1", nil
}

func (p *payments) refund(context.Context, string) error {
	p.refunds.Add(1)
	return nil
}

// checkout is a workflow that tries the checkout twice (a retry loop in
// user code): the keyed charge replays the second time, then reserving
// stock fails.
func checkout(s *pipeline.Stack, p *payments, opts ...pipeline.CallOption) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		for range 2 {
			r := pipeline.Execute(ctx, s, "payments", p.charge, append([]pipeline.CallOption{pipeline.IdempotencyKey("order-7/charge")}, opts...)...)
			if r.Err != nil {
				return 0, r.Err
			}
		}
		return 0, errStep3 // out of stock
	}
}

// A keyed step with Undo, replayed inside the same workflow (the workflow
// calls it twice), registers its Undo once: one charge, one refund (it
// was refunded twice), and its key is forgotten once, so the rerun
// charges anew under a new key.
func TestWorkflowReplayedInSameScopeUndoneOnce(t *testing.T) {
	s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	var events recorder
	defer s.Subscribe(events.listen)()
	p := &payments{}
	_, err := rollback.Do(t.Context(), checkout(s, p, pipeline.Undo("refund", p.refund)))
	require.ErrorIs(t, err, errStep3)
	assert.Equal(t, int32(1), p.charges.Load())
	assert.Equal(t, int32(1), p.refunds.Load(), "one charge, one refund")
	assert.Equal(t, 1, events.countAll(bulwark.IdempotencyForgotten))

	r := pipeline.Execute(t.Context(), s, "payments", p.charge, pipeline.IdempotencyKey("order-7/charge"))
	require.NoError(t, r.Err)
	assert.False(t, r.Replayed, "the key was forgotten: the rerun charges anew")
}

// The same in a Saga step with an Undo, which forgets the keys of the
// calls it made, replayed ones included: the saga's Undo runs once, and
// the key is forgotten once.
func TestWorkflowReplayedInSameSagaStepForgottenOnce(t *testing.T) {
	s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	var events recorder
	defer s.Subscribe(events.listen)()
	p := &payments{}
	g, err := rollback.NewSaga([]rollback.Step[struct{}]{
		{Name: "charge", Do: func(ctx context.Context, _ *struct{}) error {
			for range 2 {
				if r := pipeline.Execute(ctx, s, "payments", p.charge, pipeline.IdempotencyKey("order-7/charge")); r.Err != nil {
					return r.Err
				}
			}
			return nil
		}, Undo: func(ctx context.Context, _ *struct{}) error { return p.refund(ctx, "ch_1") }},
		{Name: "reserve", Do: func(context.Context, *struct{}) error { return errStep3 }},
	})
	require.NoError(t, err)
	require.ErrorIs(t, g.Run(t.Context(), &struct{}{}), errStep3)
	assert.Equal(t, int32(1), p.refunds.Load())
	assert.Equal(t, 1, events.countAll(bulwark.IdempotencyForgotten))
}

// Once the scope that registered a step's Undo rolled back (the charge
// refunded, its key forgotten), the same key in the same workflow is a
// new effect: the call executes anew and its Undo is registered again.
func TestWorkflowStepAgainAfterNestedRollback(t *testing.T) {
	s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	p := &payments{}
	undo := pipeline.Undo("refund", p.refund)
	key := pipeline.IdempotencyKey("order-7/charge")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
			if r := pipeline.Execute(ctx, s, "payments", p.charge, key, undo); r.Err != nil {
				return 0, r.Err
			}
			return 0, errStep3
		})
		require.ErrorIs(t, err, errStep3)
		require.Equal(t, int32(1), p.refunds.Load(), "undone by the nested scope")
		r := pipeline.Execute(ctx, s, "payments", p.charge, key, undo)
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed)
		return 0, errStep3
	})
	require.ErrorIs(t, err, errStep3)
	assert.Equal(t, int32(2), p.charges.Load())
	assert.Equal(t, int32(2), p.refunds.Load(), "each charge refunded once")
}

// A step first made in a nested scope that committed, then replayed in
// the enclosing one, is one effect: it is undone once when the workflow
// rolls back.
func TestWorkflowStepReplayedAfterNestedCommit(t *testing.T) {
	s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	p := &payments{}
	undo := pipeline.Undo("refund", p.refund)
	key := pipeline.IdempotencyKey("order-7/charge")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
			return 0, pipeline.Execute(ctx, s, "payments", p.charge, key, undo).Err
		})
		require.NoError(t, err)
		r := pipeline.Execute(ctx, s, "payments", p.charge, key, undo)
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed)
		return 0, errStep3
	})
	require.ErrorIs(t, err, errStep3)
	assert.Equal(t, int32(1), p.charges.Load())
	assert.Equal(t, int32(1), p.refunds.Load())
}

// In a journaled workflow: the Undo option is registered once, the
// durable forgetting of the key is armed once (the second call's guard is
// discarded), and a durable Compensation registered inside the function
// is registered once too: the replayed call does not run the function.
func TestDurableReplayedInSameWorkflowUndoneOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newDurableWorld(t)
		var events recorder
		defer w.owner.Subscribe(events.listen)()
		p := &payments{}
		refund, err := rollback.Register(w.ownerReg, "refund", p.refund)
		require.NoError(t, err)
		charge := func(ctx context.Context) (string, error) {
			id, err := p.charge(ctx)
			if err != nil {
				return "", err
			}
			return id, refund.OnRollback(ctx, id)
		}

		// The durable Compensation inside the function.
		_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			for range 2 {
				if r := pipeline.Execute(ctx, w.owner, "payments", charge, pipeline.IdempotencyKey("order-8/charge")); r.Err != nil {
					return 0, r.Err
				}
			}
			return 0, errStep3
		}, rollback.WithConfig(w.rb))
		require.ErrorIs(t, err, errStep3)
		assert.Equal(t, int32(1), p.charges.Load())
		assert.Equal(t, int32(1), p.refunds.Load(), "the Compensation inside the function: once")
		assert.Equal(t, 1, events.countAll(bulwark.IdempotencyForgotten))

		// The Undo option.
		p2 := &payments{}
		_, err = rollback.Do(t.Context(), checkout(w.owner, p2, pipeline.Undo("refund", p2.refund)), rollback.WithConfig(w.rb))
		require.ErrorIs(t, err, errStep3)
		assert.Equal(t, int32(1), p2.charges.Load())
		assert.Equal(t, int32(1), p2.refunds.Load(), "the Undo option: once")
		assert.Equal(t, 0, w.j.Len(), "nothing left for a recoverer")
		assert.Equal(t, 2, events.countAll(bulwark.IdempotencyForgotten), "forgotten once")

		r := pipeline.Execute(t.Context(), w.owner, "payments", p2.charge, pipeline.IdempotencyKey("order-7/charge"))
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed, "the key was forgotten")
	})
}

// A replayed call that registers nothing (no Undo: its effect is not
// undone) does not mark its key: a later call of the key with an Undo in
// the same workflow registers it.
func TestWorkflowReplayWithoutUndoDoesNotMark(t *testing.T) {
	s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	p := &payments{}
	key := pipeline.IdempotencyKey("order-7/charge")
	require.NoError(t, pipeline.Execute(t.Context(), s, "payments", p.charge, key).Err) // an earlier run
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		r := pipeline.Execute(ctx, s, "payments", p.charge, key)
		require.NoError(t, r.Err)
		require.True(t, r.Replayed)
		r = pipeline.Execute(ctx, s, "payments", p.charge, key, pipeline.Undo("refund", p.refund))
		require.NoError(t, r.Err)
		return 0, errStep3
	})
	require.ErrorIs(t, err, errStep3)
	assert.Equal(t, int32(1), p.charges.Load())
	assert.Equal(t, int32(1), p.refunds.Load())
}
