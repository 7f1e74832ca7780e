package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/rollback"
)

func TestCompensationSeesNoScope(t *testing.T) {
	var (
		j          journal
		registered error
		nested     error
	)
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "outer", j.undo("outer"))
		_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "a", func(ctx context.Context) error {
				registered = rollback.OnRollback(ctx, "b", j.undo("b"))
				// A compensation that calls through a rollback layer
				// itself (a bulwark stack, say) gets a scope of its own.
				_, nested = rollback.Do(ctx, func(ctx context.Context) (int, error) {
					return 0, rollback.OnRollback(ctx, "c", j.undo("c"))
				})
				return nil
			})
			return 0, errCall
		})
		assert.Same(t, errCall, err)
		return 0, nil
	})
	require.NoError(t, err)
	assert.ErrorIs(t, registered, rollback.ErrNoScope, "the ended scope and the enclosing one are hidden")
	assert.NoError(t, nested, "the nested call commits as a top-level scope")
	assert.Empty(t, j.names(), "nothing leaked into the enclosing scope")
}

func TestCompensationsSurviveCallerCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type key struct{}
		parent, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
		defer cancel()
		start := time.Now()

		var (
			ran      bool
			live     error
			deadline time.Time
			value    any
		)
		_, err := rollback.Do(parent, func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "undo", func(ctx context.Context) error {
				ran = true
				live = ctx.Err()
				deadline, _ = ctx.Deadline()
				value = ctx.Value(key{})
				return nil
			})
			cancel() // the caller gives up in the middle of fn
			<-ctx.Done()
			return 0, context.Cause(ctx)
		})
		assert.ErrorIs(t, err, context.Canceled)
		require.True(t, ran)
		assert.NoError(t, live, "the compensation's context is not cancelled with the caller's")
		assert.Equal(t, start.Add(rollback.DefaultTimeout), deadline, "bounded by the default timeout")
		assert.Equal(t, "v", value, "the compensation sees the call's values")
	})
}

func TestPanicInCompensationIsRecordedOthersRunThenItPropagates(t *testing.T) {
	var (
		j     journal
		ev    events
		calls int
	)
	got := func() (r any) {
		defer func() { r = recover() }()
		_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "first", j.undo("first"))
			_ = rollback.OnRollback(ctx, "panics", func(context.Context) error {
				calls++
				panic("undo exploded")
			})
			_ = rollback.OnRollback(ctx, "last", j.undo("last"))
			return 0, errCall
		}, rollback.WithConfig(rollback.Config{OnEvent: ev.listen}))
		return nil
	}()
	assert.Equal(t, "undo exploded", got, "the panic reaches the caller with its value")
	assert.Equal(t, []string{"last", "first"}, j.names(), "the others still ran first")
	assert.Equal(t, 1, calls, "a panicking compensation is not retried")

	evs := ev.all()
	require.Len(t, evs, 3)
	assert.Equal(t, bulwark.RollbackFailed, evs[1].Kind, "it counts as a failed compensation")
	assert.Equal(t, "panics", evs[1].Step)
	var pe *rollback.PanicError
	require.ErrorAs(t, evs[1].Err, &pe)
	assert.Equal(t, "undo exploded", pe.Value)
	assert.Contains(t, string(pe.Stack), "TestPanicInCompensationIsRecordedOthersRunThenItPropagates", "the stack shows where it panicked")
	assert.Equal(t, bulwark.RollbackCompensated, evs[2].Kind)
}

func TestPanicInFnAndInCompensation(t *testing.T) {
	var (
		j  journal
		ev events
	)
	got := func() (r any) {
		defer func() { r = recover() }()
		_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "a", j.undo("a"))
			_ = rollback.OnRollback(ctx, "b", func(context.Context) error { panic("undo") })
			panic("fn")
		}, rollback.WithConfig(rollback.Config{OnEvent: ev.listen}))
		return nil
	}()
	assert.Equal(t, "fn", got, "the compensation's panic is recorded, the call's panic continues")
	assert.Equal(t, []string{"a"}, j.names())
	evs := ev.all()
	require.Len(t, evs, 2)
	assert.Equal(t, bulwark.RollbackFailed, evs[0].Kind, "the failure is reported through events")
	assert.Equal(t, "b", evs[0].Step)
	assert.Equal(t, bulwark.RollbackCompensated, evs[1].Kind)
}

func TestCompensationRetriedUntilItSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			ev    events
			calls []time.Time
		)
		start := time.Now()
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "flaky", func(context.Context) error {
				calls = append(calls, time.Now())
				if len(calls) < 3 {
					return errors.New("not yet")
				}
				return nil
			})
			return 0, errCall
		}, rollback.WithConfig(rollback.Config{InitialInterval: time.Second, OnEvent: ev.listen}))

		assert.Same(t, errCall, err, "it succeeded on the third attempt")
		require.Len(t, calls, 3)
		// The waits follow the backoff: 1s ±50%, then 1.5s ±50%.
		first, second := calls[1].Sub(calls[0]), calls[2].Sub(calls[1])
		assert.GreaterOrEqual(t, first, 500*time.Millisecond)
		assert.LessOrEqual(t, first, 1500*time.Millisecond)
		assert.GreaterOrEqual(t, second, 750*time.Millisecond)
		assert.LessOrEqual(t, second, 2250*time.Millisecond)

		evs := ev.all()
		require.Len(t, evs, 1)
		assert.Equal(t, bulwark.RollbackCompensated, evs[0].Kind)
		assert.Equal(t, "flaky", evs[0].Step)
		assert.Equal(t, 3, evs[0].Attempt)
		assert.NoError(t, evs[0].Err)
		assert.Equal(t, time.Since(start), evs[0].Duration, "the duration includes the waits")
	})
}

func TestCompensationRetriesExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			ev    events
			calls int
		)
		last := errors.New("still down")
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "down", func(context.Context) error {
				calls++
				if calls == 5 {
					return last
				}
				return fmt.Errorf("down %d", calls)
			})
			return 0, errCall
		}, rollback.WithConfig(rollback.Config{Attempts: 5, OnEvent: ev.listen}))

		assert.Equal(t, 5, calls)
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		assert.Same(t, errCall, rbErr.Cause)
		require.Len(t, rbErr.Failures, 1)
		assert.Equal(t, "down", rbErr.Failures[0].Step)
		assert.Same(t, last, rbErr.Failures[0].Err, "the last attempt's error is kept")

		evs := ev.all()
		require.Len(t, evs, 1)
		assert.Equal(t, bulwark.RollbackFailed, evs[0].Kind)
		assert.Equal(t, 5, evs[0].Attempt)
		assert.Same(t, last, evs[0].Err)
	})
}

func TestPermanentCompensationErrorIsNotRetried(t *testing.T) {
	gone := errors.New("page already deleted by someone else")
	for name, mark := range map[string]func(error) error{
		"rollback.Permanent": rollback.Permanent,
		"wrapped": func(err error) error {
			return fmt.Errorf("delete: %w", rollback.Permanent(err))
		},
	} {
		t.Run(name, func(t *testing.T) {
			calls := 0
			_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
				_ = rollback.OnRollback(ctx, "delete page", func(context.Context) error {
					calls++
					return mark(gone)
				})
				return 0, errCall
			})
			assert.Equal(t, 1, calls)
			var rbErr *rollback.Error
			require.ErrorAs(t, err, &rbErr)
			require.Len(t, rbErr.Failures, 1)
			assert.Equal(t, "delete page", rbErr.Failures[0].Step)
			assert.ErrorIs(t, rbErr.Failures[0].Err, gone)
			assert.Contains(t, err.Error(), `"delete page"`)
		})
	}
	assert.NoError(t, rollback.Permanent(nil))
}

func TestPermanentUnmarksTheRecordedError(t *testing.T) {
	gone := errors.New("gone")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "x", func(context.Context) error { return rollback.Permanent(gone) })
		return 0, errCall
	})
	var rbErr *rollback.Error
	require.ErrorAs(t, err, &rbErr)
	assert.Same(t, gone, rbErr.Failures[0].Err)
}

func TestCompensationTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		var ended time.Time
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "hangs", func(ctx context.Context) error {
				calls++
				<-ctx.Done() // a remote call that never answers
				ended = time.Now()
				return ctx.Err()
			})
			return 0, errCall
		})
		assert.Equal(t, 1, calls, "no attempt starts after the timeout")
		assert.Equal(t, rollback.DefaultTimeout, ended.Sub(start))
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		assert.ErrorIs(t, rbErr.Failures[0].Err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, context.DeadlineExceeded,
			"a compensation's timeout is not the call's")
	})
}

func TestCompensationTimeoutDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		down := errors.New("down")
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "x", func(context.Context) error {
				calls++
				return down
			})
			return 0, errCall
		}, rollback.WithConfig(rollback.Config{Timeout: time.Second, InitialInterval: time.Minute}))
		assert.Equal(t, 1, calls)
		assert.Equal(t, time.Second, time.Since(start), "the wait stops at the timeout")
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		assert.ErrorIs(t, rbErr.Failures[0].Err, down, "the last error is kept")
		assert.ErrorIs(t, rbErr.Failures[0].Err, context.DeadlineExceeded, "and says it timed out")
	})
}

func TestNegativeTimeoutMeansNone(t *testing.T) {
	var hasDeadline bool
	_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "x", func(ctx context.Context) error {
			_, hasDeadline = ctx.Deadline()
			return nil
		})
		return 0, errCall
	}, rollback.WithConfig(rollback.Config{Timeout: -1}))
	assert.False(t, hasDeadline)
}

func TestEveryCompensationRunsEvenIfOneFails(t *testing.T) {
	var j journal
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "a", j.undo("a"))
		_ = rollback.OnRollback(ctx, "b", func(context.Context) error { return rollback.Permanent(errors.New("b broke")) })
		_ = rollback.OnRollback(ctx, "c", func(context.Context) error { return rollback.Permanent(errors.New("c broke")) })
		_ = rollback.OnRollback(ctx, "d", j.undo("d"))
		return 0, errCall
	})
	assert.Equal(t, []string{"d", "a"}, j.names())
	var rbErr *rollback.Error
	require.ErrorAs(t, err, &rbErr)
	require.Len(t, rbErr.Failures, 2)
	assert.Equal(t, "c", rbErr.Failures[0].Step, "failures in the order they ran")
	assert.Equal(t, "b", rbErr.Failures[1].Step)
	assert.Empty(t, rbErr.Skipped)
}

func TestStopOnFailure(t *testing.T) {
	var j journal
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "a", j.undo("a"))
		_ = rollback.OnRollback(ctx, "b", j.undo("b"))
		_ = rollback.OnRollback(ctx, "c", func(context.Context) error { return rollback.Permanent(errors.New("c broke")) })
		_ = rollback.OnRollback(ctx, "d", j.undo("d"))
		return 0, errCall
	}, func(c *rollback.Config) { c.StopOnFailure = true })
	assert.Equal(t, []string{"d"}, j.names())
	var rbErr *rollback.Error
	require.ErrorAs(t, err, &rbErr)
	require.Len(t, rbErr.Failures, 1)
	assert.Equal(t, "c", rbErr.Failures[0].Step)
	assert.Equal(t, []string{"b", "a"}, rbErr.Skipped, "the compensations not run are named")
	assert.ErrorIs(t, err, errCall)
}

func TestEventsOneForEachCompensation(t *testing.T) {
	var ev events
	broke := errors.New("broke")
	_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "ok", func(context.Context) error { return nil })
		_ = rollback.OnRollback(ctx, "bad", func(context.Context) error { return rollback.Permanent(broke) })
		return 0, errCall
	}, rollback.WithConfig(rollback.Config{OnEvent: ev.listen}))
	evs := ev.all()
	require.Len(t, evs, 2)
	assert.Equal(t, bulwark.RollbackFailed, evs[0].Kind)
	assert.Equal(t, "bad", evs[0].Step)
	assert.Same(t, broke, evs[0].Err)
	assert.Equal(t, 1, evs[0].Attempt)
	assert.False(t, evs[0].Time.IsZero())
	assert.Equal(t, bulwark.RollbackCompensated, evs[1].Kind)
	assert.Equal(t, "ok", evs[1].Step)
	assert.NoError(t, evs[1].Err)
	assert.Empty(t, evs[1].Executor)
}

func TestListenerPanicDoesNotStopTheRollback(t *testing.T) {
	var j journal
	got := func() (r any) {
		defer func() { r = recover() }()
		_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "a", j.undo("a"))
			_ = rollback.OnRollback(ctx, "b", j.undo("b"))
			return 0, errCall
		}, rollback.WithConfig(rollback.Config{OnEvent: func(ev bulwark.Event) {
			panic("listener " + ev.Step)
		}}))
		return nil
	}()
	assert.Equal(t, []string{"b", "a"}, j.names(), "every compensation still ran")
	assert.Equal(t, "listener b", got, "then the first listener panic propagates")
}
