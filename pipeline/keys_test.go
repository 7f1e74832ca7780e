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
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// remote is a service that honours idempotency keys, as Stripe's or
// Notion's do: a request with a key it has seen gets the first answer
// again, even if what it created was deleted since.
type remote struct {
	mu      sync.Mutex
	byKey   map[string]string
	exists  map[string]bool
	created int
	keys    []string // the key of every request, in order
}

func newRemote() *remote { return &remote{byKey: map[string]string{}, exists: map[string]bool{}} }

func (r *remote) createPage(ctx context.Context) (string, error) {
	key, _, ok := idempotency.KeyFrom(ctx)
	if !ok {
		return "", errors.New("no idempotency key in the call")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, key)
	if id, seen := r.byKey[key]; seen {
		return id, nil // the remote replays, deleted or not
	}
	r.created++
	id := "page-" + string(rune('0'+r.created))
	r.byKey[key] = id
	r.exists[id] = true
	return id, nil
}

func (r *remote) deletePage(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.exists, id)
	return nil
}

// Input 1: the key is visible inside every form of keyed call.
func TestKeyVisibleInsideKeyedCalls(t *testing.T) {
	s := newStack(t, pipeline.Reliable())
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

	got, err := pipeline.Do(ctx, s, "notion", seen, pipeline.IdempotencyKeyParts("create-page", "retro"))
	require.NoError(t, err)
	assert.Equal(t, want, got, "IdempotencyKeyParts: the executor-namespaced key")

	got, err = pipeline.Do(ctx, s, "notion", seen, pipeline.IdempotencyKey("order-7"))
	require.NoError(t, err)
	assert.Equal(t, "order-7", got)

	got, err = pipeline.Do(idempotency.WithKey(ctx, "attached-1"), s, "notion", seen)
	require.NoError(t, err)
	assert.Equal(t, "attached-1", got)

	got, err = pipeline.Middleware[string](s, "notion", pipeline.IdempotencyKey("mw-1"))(seen)(ctx)
	require.NoError(t, err)
	assert.Equal(t, "mw-1", got)

	got, err = pipeline.Middleware[string](s, "notion")(seen)(idempotency.WithKey(ctx, "attached-2"))
	require.NoError(t, err)
	assert.Equal(t, "attached-2", got)

	// A call without a key has none.
	_, err = pipeline.Do(ctx, s, "notion", seen)
	assert.ErrorContains(t, err, "no key")

	// A call made inside a keyed operation is not keyed by it (it runs,
	// and is not a re-entrant duplicate), and KeyFrom in it tells the
	// innermost keyed operation's key; its own key, if it has one, wins.
	ran := 0
	inner, err := pipeline.Do(ctx, s, "notion", func(ctx context.Context) (string, error) {
		ran++
		own, err := pipeline.Do(ctx, s, "slack", seen, pipeline.IdempotencyKey("inner"))
		if err != nil || own != "inner" {
			return "", fmt.Errorf("inner keyed call saw %q, %v", own, err)
		}
		return pipeline.Do(ctx, s, "slack", seen)
	}, pipeline.IdempotencyKey("outer"))
	require.NoError(t, err)
	assert.Equal(t, "outer", inner)
	assert.Equal(t, 1, ran)
}

// Input 2: a workflow rolls back a keyed step; the rerun sends a new
// remote key, so the remote service creates a new page instead of
// replaying the deleted one. Retries of one execution keep the key.
func TestRolledBackStepRunsUnderANewRemoteKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Reliable()
		cfg.Retry = &retry.Config{NoWait: true}
		s := newStack(t, cfg)
		svc := newRemote()
		attempts := 0
		create := func(ctx context.Context) (string, error) {
			attempts++
			id, err := svc.createPage(ctx)
			if attempts == 1 {
				return "", errors.New("connection reset after the page was created")
			}
			return id, err
		}
		step := func(ctx context.Context) pipeline.Result[string] {
			return pipeline.Execute(ctx, s, "notion", create, pipeline.IdempotencyKeyParts("create-page", "retro"),
				pipeline.Undo("delete page", func(_ context.Context, id string) error { return svc.deletePage(id) }))
		}
		run := func(fail bool) (pipeline.Result[string], error) {
			var r pipeline.Result[string]
			_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
				r = step(ctx)
				if r.Err == nil && fail {
					return 0, errStep3
				}
				return 0, r.Err
			})
			return r, err
		}

		r, err := run(true)
		require.ErrorIs(t, err, errStep3)
		assert.Equal(t, 2, r.Attempts)
		assert.Equal(t, "page-1", r.Value)
		require.Len(t, svc.keys, 2)
		assert.Equal(t, svc.keys[0], svc.keys[1], "a retry of one execution keeps the remote key")
		base, _ := idempotency.Key("notion", "create-page", "retro")
		assert.Equal(t, base, svc.keys[0], "generation 0 is the key itself")
		assert.False(t, svc.exists["page-1"], "undone")

		r, err = run(false)
		require.NoError(t, err)
		assert.False(t, r.Replayed)
		assert.Equal(t, "page-2", r.Value, "a new page, not the deleted one replayed by the remote")
		assert.Equal(t, idempotency.GenerationKey(base, 1), svc.keys[len(svc.keys)-1])
		assert.True(t, svc.exists["page-2"])

		// A rerun after success replays without a request.
		n := len(svc.keys)
		r, err = run(false)
		require.NoError(t, err)
		assert.True(t, r.Replayed)
		assert.Equal(t, "page-2", r.Value)
		assert.Len(t, svc.keys, n)
	})
}

// A failed execution (its claim released) and a rerun keep the key's
// generation: the remote may have done the work.
func TestFailedExecutionRerunKeepsTheKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Reliable()
		cfg.Retry = nil
		s := newStack(t, cfg)
		svc := newRemote()
		key := pipeline.IdempotencyKeyParts("create-page", "q3")
		undo := pipeline.Undo("delete page", func(_ context.Context, id string) error { return svc.deletePage(id) })
		// Generation 1: created, then undone.
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			require.NoError(t, pipeline.Execute(ctx, s, "notion", svc.createPage, key, undo).Err)
			return 0, errStep3
		})
		require.ErrorIs(t, err, errStep3)
		// The rerun fails after the remote did the work (its answer lost).
		lost := func(ctx context.Context) (string, error) {
			_, _ = svc.createPage(ctx)
			return "", errors.New("timeout reading the answer")
		}
		require.Error(t, pipeline.Execute(t.Context(), s, "notion", lost, key).Err)
		// The next rerun sends the same key, and the remote answers with
		// the page it made.
		r := pipeline.Execute(t.Context(), s, "notion", svc.createPage, key)
		require.NoError(t, r.Err)
		assert.Equal(t, "page-2", r.Value)
		assert.Equal(t, 2, svc.created)
		k := svc.keys
		assert.Equal(t, k[len(k)-1], k[len(k)-2])
	})
}
