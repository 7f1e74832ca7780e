package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
)

// Once marks a token once per workflow: the outermost scope and those
// nested in it; a mark made in a nested scope that rolled back is
// released, one made in a nested scope that committed stands.
func TestOnce(t *testing.T) {
	boom := errors.New("boom")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		first, err := rollback.Once(ctx, "a", nop)
		require.NoError(t, err)
		assert.True(t, first)
		first, err = rollback.Once(ctx, "a", nop)
		require.NoError(t, err)
		assert.False(t, first, "marked already")

		_, err = rollback.Do(ctx, func(ctx context.Context) (int, error) {
			first, err := rollback.Once(ctx, "a", nop)
			require.NoError(t, err)
			assert.False(t, first, "marked by the enclosing scope")
			first, err = rollback.Once(ctx, "b", nop)
			require.NoError(t, err)
			assert.True(t, first)
			return 0, boom
		})
		require.ErrorIs(t, err, boom)
		first, err = rollback.Once(ctx, "b", nop)
		require.NoError(t, err)
		assert.True(t, first, "released: its scope rolled back")

		_, err = rollback.Do(ctx, func(ctx context.Context) (int, error) {
			first, err := rollback.Once(ctx, "c", nop)
			require.NoError(t, err)
			assert.True(t, first)
			return 0, nil
		})
		require.NoError(t, err)
		first, err = rollback.Once(ctx, "c", nop)
		require.NoError(t, err)
		assert.False(t, first, "stands: its scope committed into this one")
		return 0, nil
	})
	require.NoError(t, err)

	// Each workflow has its own marks.
	_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		first, err := rollback.Once(ctx, "a", nop)
		require.NoError(t, err)
		assert.True(t, first)
		return 0, nil
	})
	require.NoError(t, err)
}

func TestOnceInvalid(t *testing.T) {
	_, err := rollback.Once(t.Context(), "a", nop)
	assert.ErrorIs(t, err, rollback.ErrNoScope)
	ctx, sc, err := rollback.Begin(t.Context())
	require.NoError(t, err)
	_, err = rollback.Once(ctx, "a", nil)
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	assert.ErrorContains(t, err, "Once register")
	for _, tok := range []any{nil, []string{"a"}, map[string]int{}} {
		_, err = rollback.Once(ctx, tok, nop)
		assert.ErrorIs(t, err, rollback.ErrInvalid, "%T", tok)
		assert.ErrorContains(t, err, "Once token")
	}
	require.NoError(t, sc.Commit())
	_, err = rollback.Once(ctx, "a", nop)
	assert.ErrorIs(t, err, rollback.ErrScopeEnded)
}

func nop() error { return nil }

// Once marks a token only when its registration succeeded: a
// registration that failed (the scope is full) leaves the token free, and
// the next call registers (it is not told "already registered" for
// nothing registered).
func TestOnceMarksOnlyAfterRegistration(t *testing.T) {
	full := errors.New("full")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		calls := 0
		ran, err := rollback.Once(ctx, "a", func() error { calls++; return full })
		assert.True(t, ran)
		require.ErrorIs(t, err, full)
		ran, err = rollback.Once(ctx, "a", func() error { calls++; return nil })
		require.NoError(t, err)
		assert.True(t, ran, "the failed registration left the token free")
		ran, err = rollback.Once(ctx, "a", func() error { calls++; return nil })
		require.NoError(t, err)
		assert.False(t, ran, "marked by the registration that succeeded")
		assert.Equal(t, 2, calls)
		return 0, nil
	})
	require.NoError(t, err)
}

// register runs under no lock: it may call Once for another token, and a
// concurrent call with the same token waits for its outcome — it
// registers nothing after a success, and in its stead after a failure or
// a panic.
func TestOnceRegisterRunsUnlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, scope, err := rollback.Begin(t.Context())
		require.NoError(t, err)
		defer scope.Commit()

		ran, err := rollback.Once(ctx, "a", func() error {
			inner, err := rollback.Once(ctx, "b", func() error { return nil })
			assert.True(t, inner)
			return err
		})
		require.NoError(t, err)
		assert.True(t, ran, "a nested Once for another token does not wait for the first")

		// A call with the same token as one whose register is running
		// waits for it: after a failure it registers in its stead, after a
		// success it registers nothing.
		for _, tc := range []struct {
			outcome    error
			secondRuns bool
		}{{errors.New("scope full"), true}, {nil, false}} {
			token := fmt.Sprint("c", tc.outcome)
			release := make(chan error)
			firstDone := make(chan error, 1)
			go func() {
				_, err := rollback.Once(ctx, token, func() error { return <-release })
				firstDone <- err
			}()
			synctest.Wait() // the first holds the token, pending
			var second bool
			secondDone := make(chan struct{})
			go func() {
				defer close(secondDone)
				second, _ = rollback.Once(ctx, token, func() error { return nil })
			}()
			synctest.Wait() // the second waits
			release <- tc.outcome
			assert.Equal(t, tc.outcome, <-firstDone)
			<-secondDone
			assert.Equal(t, tc.secondRuns, second, "outcome %v", tc.outcome)
		}

		assert.Panics(t, func() {
			_, _ = rollback.Once(ctx, "d", func() error { panic("boom") })
		})
		ran, err = rollback.Once(ctx, "d", func() error { return nil })
		require.NoError(t, err)
		assert.True(t, ran, "a panic leaves the token free")
	})
}
