package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
)

func TestOnRollbackWithoutScope(t *testing.T) {
	var j journal
	err := rollback.OnRollback(t.Context(), "a", j.undo("a"))
	assert.ErrorIs(t, err, rollback.ErrNoScope)
	assert.Empty(t, j.names())
}

func TestOnRollbackInvalidArguments(t *testing.T) {
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		err := rollback.OnRollback(ctx, "", func(context.Context) error { return nil })
		assert.ErrorIs(t, err, rollback.ErrInvalid)
		assert.ErrorContains(t, err, "name")
		err = rollback.OnRollback(ctx, "x", nil)
		assert.ErrorIs(t, err, rollback.ErrInvalid)
		assert.ErrorContains(t, err, "undo")
		return 0, errCall
	})
	assert.Same(t, errCall, err)
}

func TestOnRollbackAfterScopeEnded(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprint("fail=", fail), func(t *testing.T) {
			var (
				j     journal
				inner context.Context
			)
			_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
				inner = ctx
				if fail {
					return 0, errCall
				}
				return 0, nil
			})
			err := rollback.OnRollback(inner, "late", j.undo("late"))
			assert.ErrorIs(t, err, rollback.ErrScopeEnded)
			assert.Empty(t, j.names(), "a refused registration is not run")
		})
	}
}

func TestNestedScopeHandsOverOnSuccess(t *testing.T) {
	var j journal
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "outer-1", j.undo("outer-1"))
		_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "inner-1", j.undo("inner-1"))
			_ = rollback.OnRollback(ctx, "inner-2", j.undo("inner-2"))
			return 1, nil
		})
		require.NoError(t, err)
		assert.Empty(t, j.names(), "the inner success runs nothing")
		_ = rollback.OnRollback(ctx, "outer-2", j.undo("outer-2"))
		return 0, errCall // a later failure of the outer call
	})
	assert.Same(t, errCall, err)
	assert.Equal(t, []string{"outer-2", "inner-2", "inner-1", "outer-1"}, j.names())
}

func TestNestedScopeFailureIsItsOwn(t *testing.T) {
	var j journal
	v, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "outer", j.undo("outer"))
		_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "inner", j.undo("inner"))
			return 0, errCall
		})
		assert.Same(t, errCall, err)
		assert.Equal(t, []string{"inner"}, j.names())
		return 1, nil // the outer call recovers and succeeds
	})
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.Equal(t, []string{"inner"}, j.names(), "the outer success discards its own")
}

func TestNestedCommitAfterEnclosingScopeEnded(t *testing.T) {
	var (
		j     journal
		inner *rollback.Scope
		ictx  context.Context
	)
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		var err error
		ictx, inner, err = rollback.Begin(ctx)
		require.NoError(t, err)
		return 0, nil
	})
	require.NoError(t, err)

	// The nested work outlived its enclosing call and completes now.
	require.NoError(t, rollback.OnRollback(ictx, "late", j.undo("late")))
	err = inner.Commit()
	assert.ErrorIs(t, err, rollback.ErrScopeEnded)
	assert.Equal(t, []string{"late"}, j.names(), "nothing could undo it later, so it is undone now")
}

func TestScopeDoubleRollbackIsNoop(t *testing.T) {
	var j journal
	ctx, sc, err := rollback.Begin(t.Context())
	require.NoError(t, err)
	require.NoError(t, rollback.OnRollback(ctx, "a", j.undo("a")))
	assert.Equal(t, 1, sc.Len())

	assert.Same(t, errCall, sc.Rollback(errCall))
	assert.Equal(t, []string{"a"}, j.names())
	assert.Equal(t, 0, sc.Len())

	other := errors.New("other")
	assert.Same(t, other, sc.Rollback(other), "a second rollback returns its cause and does nothing")
	assert.Nil(t, sc.Rollback(nil))
	assert.Equal(t, []string{"a"}, j.names())
	assert.ErrorIs(t, sc.Commit(), rollback.ErrScopeEnded)
	assert.ErrorIs(t, rollback.OnRollback(ctx, "b", j.undo("b")), rollback.ErrScopeEnded)
}

func TestScopeCommitThenDeferredRollback(t *testing.T) {
	var j journal
	func() {
		ctx, sc, err := rollback.Begin(t.Context())
		require.NoError(t, err)
		defer func() { _ = sc.Rollback(nil) }()
		require.NoError(t, rollback.OnRollback(ctx, "a", j.undo("a")))
		require.NoError(t, sc.Commit())
		assert.ErrorIs(t, sc.Commit(), rollback.ErrScopeEnded, "a second commit is reported")
	}()
	assert.Empty(t, j.names(), "the deferred rollback after commit does nothing")
}

func TestScopeRollbackWithNilCause(t *testing.T) {
	ctx, sc, err := rollback.Begin(t.Context())
	require.NoError(t, err)
	_ = rollback.OnRollback(ctx, "x", func(context.Context) error { return rollback.Permanent(errCall) })
	err = sc.Rollback(nil)
	var rbErr *rollback.Error
	require.ErrorAs(t, err, &rbErr)
	assert.NoError(t, rbErr.Cause)
	assert.Equal(t, `rollback: compensation "x" failed: call failed`, err.Error())
}

func TestConcurrentRegistration(t *testing.T) {
	const n = 50
	var j journal
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		done := make(chan struct{})
		for i := range n {
			go func() {
				defer func() { done <- struct{}{} }()
				name := fmt.Sprint("g", i)
				assert.NoError(t, rollback.OnRollback(ctx, name, j.undo(name)))
			}()
		}
		for range n {
			<-done
		}
		return 0, errCall
	})
	assert.Same(t, errCall, err)
	ran := j.names()
	require.Len(t, ran, n, "every registration ran exactly once")
	seen := map[string]bool{}
	for _, name := range ran {
		assert.False(t, seen[name], "ran twice: %s", name)
		seen[name] = true
	}
}

func TestScopeConcurrentEndRunsCompensationsOnce(t *testing.T) {
	var j journal
	ctx, sc, err := rollback.Begin(t.Context())
	require.NoError(t, err)
	for i := range 5 {
		require.NoError(t, rollback.OnRollback(ctx, fmt.Sprint(i), j.undo(fmt.Sprint(i))))
	}
	done := make(chan error)
	for i := range 10 {
		go func() {
			if i%2 == 0 {
				done <- sc.Rollback(errCall)
			} else {
				done <- sc.Commit()
			}
		}()
	}
	commits := 0
	for range 10 {
		if err := <-done; err == nil {
			commits++
		}
	}
	ran := j.names()
	if commits == 1 {
		assert.Empty(t, ran, "a commit won: nothing ran")
	} else {
		assert.Zero(t, commits, "only the first end counts")
		assert.Equal(t, []string{"4", "3", "2", "1", "0"}, ran, "a rollback won: each ran once")
	}
}

func TestNestedDoOutlivingItsEnclosingCall(t *testing.T) {
	var j journal
	release := make(chan struct{})
	type result struct {
		v   int
		err error
	}
	inner := make(chan result)
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		go func() {
			v, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
				_ = rollback.OnRollback(ctx, "late", j.undo("late"))
				<-release // still working when the outer call returns
				return 42, nil
			})
			inner <- result{v, err}
		}()
		return 0, nil
	})
	require.NoError(t, err)
	close(release)
	r := <-inner
	assert.ErrorIs(t, r.err, rollback.ErrScopeEnded)
	assert.Zero(t, r.v, "its work was undone, so no value is returned")
	assert.Equal(t, []string{"late"}, j.names())
}

func TestInScope(t *testing.T) {
	assert.False(t, rollback.InScope(context.Background()))
	ctx, sc, err := rollback.Begin(context.Background())
	require.NoError(t, err)
	assert.True(t, rollback.InScope(ctx))
	require.NoError(t, sc.Commit())
	assert.False(t, rollback.InScope(ctx), "an ended scope registers nothing")

	ran := false
	failed := errors.New("step failed")
	_, err = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
		assert.True(t, rollback.InScope(ctx))
		require.NoError(t, rollback.OnRollback(ctx, "undo", func(ctx context.Context) error {
			ran = true
			assert.False(t, rollback.InScope(ctx), "compensations see no scope")
			return nil
		}))
		return 0, failed
	})
	require.ErrorIs(t, err, failed)
	assert.True(t, ran)
}
