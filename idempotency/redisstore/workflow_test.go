package redisstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
)

// The five inputs of issue 15 on a real redis-server: a workflow of keyed
// pipeline calls whose idempotency store is Redis. A process that dies is
// a Stack dropped without a rollback; the next process is a new Stack,
// with a client of its own, over the same Redis.

// Input 1: inside every form of keyed call, KeyFrom returns the key the
// call runs under.
func TestWorkflowKeyVisibleInsideKeyedCalls(t *testing.T) {
	p := newProcess(t, redisAddr(t), testPrefix())
	ctx := t.Context()
	seen := func(ctx context.Context) (string, error) {
		key, _, ok := idempotency.KeyFrom(ctx)
		if !ok {
			return "", bulwark.Final(errors.New("no key"))
		}
		return key, nil
	}
	want, err := idempotency.Key("notion", "create-page", "retro")
	require.NoError(t, err)

	got, err := pipeline.Do(ctx, p.stack, "notion", seen, pipeline.IdempotencyKeyParts("create-page", "retro"))
	require.NoError(t, err)
	assert.Equal(t, want, got, "IdempotencyKeyParts")
	got, err = pipeline.Do(ctx, p.stack, "notion", seen, pipeline.IdempotencyKey("order-7"))
	require.NoError(t, err)
	assert.Equal(t, "order-7", got, "IdempotencyKey")
	got, err = pipeline.Do(idempotency.WithKey(ctx, "attached-1"), p.stack, "notion", seen)
	require.NoError(t, err)
	assert.Equal(t, "attached-1", got, "idempotency.WithKey")
	got, err = pipeline.Middleware[string](p.stack, "notion", pipeline.IdempotencyKey("mw-1"))(seen)(ctx)
	require.NoError(t, err)
	assert.Equal(t, "mw-1", got, "Middleware")

	// The stored result replays the key the execution saw, in another
	// process too.
	other, err := newProcessOn(p.store, p.svc.c, p.svc.p, 0)
	require.NoError(t, err)
	r := pipeline.Execute(ctx, other.stack, "notion", seen, pipeline.IdempotencyKeyParts("create-page", "retro"))
	require.NoError(t, r.Err)
	assert.True(t, r.Replayed)
	assert.Equal(t, want, r.Value)

	_, err = pipeline.Do(ctx, p.stack, "notion", seen)
	assert.ErrorContains(t, err, "no key", "a call without a key has none")

	// The idempotency Middleware's own key function, on a Manager over
	// the store; once the key is forgotten, the next execution sees its
	// next generation.
	m, err := idempotency.New(p.store, idempotency.Config{})
	require.NoError(t, err)
	keyOf := func(context.Context) (string, string, bool) { return "order-8", "", true }
	mw := idempotency.Middleware[string](m, keyOf)(seen)
	got, err = mw(ctx)
	require.NoError(t, err)
	assert.Equal(t, "order-8", got, "idempotency.Middleware's key function")
	forgotten, err := m.Forget(ctx, "order-8")
	require.NoError(t, err)
	require.True(t, forgotten)
	got, err = mw(ctx)
	require.NoError(t, err)
	assert.Equal(t, idempotency.GenerationKey("order-8", 1), got, "after Forget: the next generation")
}

// Input 2: a workflow rolls back a keyed step; the rerun, in another
// process, sends a new remote key, so the remote creates a new page
// instead of replaying the deleted one. A retry within one execution
// keeps the key.
func TestWorkflowRolledBackStepRunsUnderANewRemoteKey(t *testing.T) {
	addr, prefix := redisAddr(t), testPrefix()
	base := stepKey(plan[0], "retro")
	var evs events
	step := func(ctx context.Context, p *process, flaky bool) pipeline.Result[string] {
		attempts := 0
		return pipeline.Execute(ctx, p.stack, "notion", func(ctx context.Context) (string, error) {
			attempts++
			id, err := p.svc.Create(ctx, "page")
			if flaky && attempts == 1 {
				return "", errors.New("connection reset after the page was created")
			}
			return id, err
		}, pipeline.IdempotencyKeyParts("create-page", "retro"), pipeline.Undo("delete page", p.svc.Delete))
	}
	run := func(p *process, fail, flaky bool) (pipeline.Result[string], error) {
		var r pipeline.Result[string]
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			r = step(ctx, p, flaky)
			if r.Err == nil && fail {
				return 0, errArchived
			}
			return 0, r.Err
		}, rollback.WithConfig(rollback.Config{OnEvent: evs.listen}))
		return r, err
	}

	p1 := newProcess(t, addr, prefix)
	defer p1.stack.Subscribe(evs.listen)()
	r, err := run(p1, true, true)
	require.ErrorIs(t, err, errArchived)
	assert.Equal(t, 2, r.Attempts)
	assert.Equal(t, "page-1", r.Value)
	assert.Equal(t, []string{base, base}, p1.svc.Keys(t, "page"), "a retry keeps the remote key; generation 0 is the key itself")
	assert.Equal(t, []string{"create page-1", "delete page-1"}, p1.svc.Log(t))
	_, found, err := p1.store.Get(t.Context(), base)
	require.NoError(t, err)
	assert.False(t, found, "the key is forgotten")
	assert.Equal(t, 1, evs.count(bulwark.IdempotencyForgotten))
	assert.Equal(t, 1, evs.count(bulwark.RollbackCompensated), "the delete only (input 5)")

	// Another process reruns it.
	p2 := newProcess(t, addr, prefix)
	r, err = run(p2, false, false)
	require.NoError(t, err)
	assert.False(t, r.Replayed)
	assert.Equal(t, "page-2", r.Value, "a new page, not the deleted one replayed by the remote")
	assert.Equal(t, []string{base, base, idempotency.GenerationKey(base, 1)}, p2.svc.Keys(t, "page"))
	assert.Equal(t, []string{"page-2"}, p2.svc.Live(t))
	rec, found, err := p2.store.Get(t.Context(), base)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, uint64(1), rec.Generation)

	// A third process replays it without a request.
	r, err = run(newProcess(t, addr, prefix), false, false)
	require.NoError(t, err)
	assert.True(t, r.Replayed)
	assert.Equal(t, "page-2", r.Value)
	assert.Len(t, p2.svc.Keys(t, "page"), 3)
}

// Input 3: a saga. Run 1 records the keyed step and the process dies; the
// rerun replays it, a later step fails, the step's Undo deletes the page
// and the key is forgotten: the third run creates a new page under a new
// remote key.
func TestWorkflowSagaForgetsReplayedKeys(t *testing.T) {
	addr, prefix := redisAddr(t), testPrefix()
	base := stepKey(plan[0], "retro")
	type state struct{ page string }
	// The step's Undo compensates the call: the call has no Undo of its own.
	createPage := func(ctx context.Context, p *process) pipeline.Result[string] {
		return pipeline.Execute(ctx, p.stack, "notion", func(ctx context.Context) (string, error) {
			return p.svc.Create(ctx, "page")
		}, pipeline.IdempotencyKeyParts("create-page", "retro"))
	}
	saga := func(p *process, fail bool) *rollback.Saga[state] {
		g, err := rollback.NewSaga([]rollback.Step[state]{
			{Name: "create page",
				Do: func(ctx context.Context, st *state) error {
					r := createPage(ctx, p)
					st.page = r.Value
					return r.Err
				},
				Undo: func(ctx context.Context, st *state) error { return p.svc.Delete(ctx, st.page) }},
			{Name: "post to slack", Do: func(context.Context, *state) error {
				if fail {
					return errArchived
				}
				return nil
			}},
		})
		require.NoError(t, err)
		return g
	}

	// Run 1: the step outside any scope, then the process dies.
	p1 := newProcess(t, addr, prefix)
	require.NoError(t, createPage(t.Context(), p1).Err)

	// Run 2: replayed, then undone by the saga.
	p2 := newProcess(t, addr, prefix)
	var st state
	require.ErrorIs(t, saga(p2, true).Run(t.Context(), &st), errArchived)
	assert.Equal(t, "page-1", st.page)
	assert.Equal(t, []string{"create page-1", "delete page-1"}, p2.svc.Log(t))
	_, found, err := p2.store.Get(t.Context(), base)
	require.NoError(t, err)
	assert.False(t, found, "the replayed step's key is forgotten")

	// Run 3: a new page, not the deleted one.
	p3 := newProcess(t, addr, prefix)
	st = state{}
	require.NoError(t, saga(p3, false).Run(t.Context(), &st))
	assert.Equal(t, "page-2", st.page)
	assert.Equal(t, []string{base, idempotency.GenerationKey(base, 1)}, p3.svc.Keys(t, "page"))
	assert.Equal(t, []string{"page-2"}, p3.svc.Live(t))
}

// Inputs 4 and 5: run 1 completes steps 1 and 2 and the process dies; run
// 2, in another process, replays them, step 3 fails, and both replayed
// steps are undone once, with their values, newest first, their keys
// forgotten; forgetting emits idempotency:forgotten, never
// rollback:compensated; run 3 executes every step under new remote keys.
// In both workflow styles: rollback.Do and rollback.Begin.
func TestWorkflowReplayedStepsAreUndone(t *testing.T) {
	for _, begin := range []bool{false, true} {
		name := map[bool]string{false: "Do", true: "Begin"}[begin]
		t.Run(name, func(t *testing.T) {
			addr, prefix := redisAddr(t), testPrefix()
			var evs events
			opts := rollback.WithConfig(rollback.Config{OnEvent: evs.listen})

			// Run 1: steps 1 and 2, then the process dies.
			p1 := newProcess(t, addr, prefix)
			rs, err := p1.crash(t.Context(), 2, "sprint 7")
			require.NoError(t, err)
			assert.Equal(t, []string{"page-1", "card-2"}, []string{rs[0].Value, rs[1].Value})

			// Run 2: replayed, step 3 fails, both undone.
			p2 := newProcess(t, addr, prefix)
			unsubscribe := p2.stack.Subscribe(evs.listen)
			rs, err = p2.run(t.Context(), "sprint 7", 2, begin, opts)
			unsubscribe()
			require.ErrorIs(t, err, errArchived)
			require.Len(t, rs, 3)
			assert.True(t, rs[0].Replayed)
			assert.True(t, rs[1].Replayed)
			assert.Equal(t, []string{"create page-1", "create card-2", "delete card-2", "delete page-1"}, p2.svc.Log(t),
				"each replayed step undone once, with its value, newest first")
			assert.Empty(t, p2.svc.Live(t), "no orphaned page or card")
			for i := range 2 {
				_, found, err := p2.store.Get(t.Context(), stepKey(plan[i], "sprint 7"))
				require.NoError(t, err)
				assert.False(t, found, "step %d's key is forgotten", i+1)
			}

			// Input 5: forgetting is not a compensation.
			assert.Equal(t, 2, evs.count(bulwark.RollbackCompensated), "the two deletes")
			assert.Equal(t, 2, evs.count(bulwark.IdempotencyForgotten), "the two keys")
			for _, e := range evs.all() {
				if e.Kind == bulwark.RollbackCompensated {
					assert.Contains(t, []string{"delete page", "delete card"}, e.Step)
				}
			}

			// Run 3, in a third process: every step anew, under new keys.
			p3 := newProcess(t, addr, prefix)
			rs, err = p3.run(t.Context(), "sprint 7", -1, begin)
			require.NoError(t, err)
			for i, r := range rs {
				assert.False(t, r.Replayed, "step %d", i+1)
			}
			assert.Equal(t, []string{"page-3", "card-4", "message-5"}, []string{rs[0].Value, rs[1].Value, rs[2].Value})
			for i, st := range plan[:2] {
				base := stepKey(st, "sprint 7")
				assert.Equal(t, []string{base, idempotency.GenerationKey(base, 1)}, p3.svc.Keys(t, st.kind), "step %d", i+1)
			}
			assert.Equal(t, []string{stepKey(plan[2], "sprint 7")}, p3.svc.Keys(t, "message"), "step 3 never completed: generation 0")
			assert.ElementsMatch(t, []string{"page-3", "card-4", "message-5"}, p3.svc.Live(t))
		})
	}
}

// A replayed step that nothing compensates (its compensation was
// registered with OnRollback inside the function, which a replay does not
// run) keeps its key: the rerun replays the page that still exists
// instead of creating a second one.
func TestWorkflowReplayedStepWithoutUndoKeepsKey(t *testing.T) {
	addr, prefix := redisAddr(t), testPrefix()
	create := func(p *process) func(ctx context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			id, err := p.svc.Create(ctx, "page")
			if err != nil {
				return "", err
			}
			return id, rollback.OnRollback(ctx, "delete "+id, func(ctx context.Context) error { return p.svc.Delete(ctx, id) })
		}
	}
	key := pipeline.IdempotencyKeyParts("create-page", "retro")
	p1 := newProcess(t, addr, prefix)
	require.NoError(t, pipeline.Execute(t.Context(), p1.stack, "notion", create(p1), key).Err) // run 1 dies

	p2 := newProcess(t, addr, prefix)
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		r := pipeline.Execute(ctx, p2.stack, "notion", create(p2), key)
		if !r.Replayed {
			return 0, errors.New("run 2 did not replay")
		}
		return 0, errArchived
	})
	require.ErrorIs(t, err, errArchived)

	r := pipeline.Execute(t.Context(), newProcess(t, addr, prefix).stack, "notion", create(p2), key)
	require.NoError(t, r.Err)
	assert.True(t, r.Replayed)
	assert.Equal(t, "page-1", r.Value)
	assert.Equal(t, []string{"create page-1"}, p2.svc.Log(t), "one page, still there")
}

// A step whose Undo fails keeps its key in Redis: the rerun, in another
// process, replays the page that still exists instead of creating a
// second one under a new remote key.
func TestWorkflowFailedUndoKeepsTheKey(t *testing.T) {
	addr, prefix := redisAddr(t), testPrefix()
	base := stepKey(plan[0], "retro")
	run := func(p *process) (pipeline.Result[string], error) {
		var r pipeline.Result[string]
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			r = p.stepWith(ctx, 0, "retro", func(ctx context.Context) (string, error) { return p.svc.Create(ctx, "page") })
			if r.Err != nil {
				return 0, r.Err
			}
			return 0, errArchived
		})
		return r, err
	}
	p1 := newProcess(t, addr, prefix)
	p1.svc.delete = redis.NewScript(`return redis.error_reply('403 forbidden')`) // Notion refuses the delete
	r, err := run(p1)
	require.ErrorIs(t, err, errArchived)
	assert.Contains(t, err.Error(), "403 forbidden")
	assert.Equal(t, "page-1", r.Value)
	rec, found, err := p1.store.Get(t.Context(), base)
	require.NoError(t, err)
	require.True(t, found, "the key is kept: its page still exists")
	assert.Equal(t, uint64(0), rec.Generation)

	p2 := newProcess(t, addr, prefix) // deletes work again
	r, err = run(p2)
	require.ErrorIs(t, err, errArchived)
	assert.True(t, r.Replayed, "the rerun replays the page that exists")
	assert.Equal(t, "page-1", r.Value)
	assert.Equal(t, []string{"create page-1", "delete page-1"}, p2.svc.Log(t), "one page, deleted once, by the rerun")
	assert.Equal(t, []string{base}, p2.svc.Keys(t, "page"))
}
