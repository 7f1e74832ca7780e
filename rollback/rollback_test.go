package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/rollback"
)

var errCall = errors.New("call failed")

func TestDoSuccessDiscardsCompensations(t *testing.T) {
	var j journal
	ctx, report := bulwark.WithReport(t.Context())
	v, err := rollback.Do(ctx, func(ctx context.Context) (string, error) {
		require.NoError(t, rollback.OnRollback(ctx, "a", j.undo("a")))
		require.NoError(t, rollback.OnRollback(ctx, "b", j.undo("b")))
		return "ok", nil
	})
	require.NoError(t, err)
	assert.Equal(t, "ok", v)
	assert.Empty(t, j.names())
	assert.False(t, report.RolledBack())
}

func TestDoFailureRunsCompensationsInReverse(t *testing.T) {
	const n = 20
	var j journal
	ctx, report := bulwark.WithReport(t.Context())
	v, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
		for i := range n {
			require.NoError(t, rollback.OnRollback(ctx, fmt.Sprint(i), j.undo(fmt.Sprint(i))))
		}
		return 7, errCall
	})
	// Every compensation succeeded: the call's own error comes back as is,
	// with the value fn returned.
	assert.Same(t, errCall, err)
	assert.Equal(t, 7, v)
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprint(n - 1 - i)
	}
	assert.Equal(t, want, j.names())
	assert.True(t, report.RolledBack())
}

func TestDoFailureWithoutRegistrations(t *testing.T) {
	ctx, report := bulwark.WithReport(t.Context())
	_, err := rollback.Do(ctx, func(context.Context) (int, error) { return 0, errCall })
	assert.Same(t, errCall, err)
	assert.False(t, report.RolledBack(), "nothing ran, so nothing was rolled back")
}

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

func TestPanicInFnRunsCompensationsThenPropagates(t *testing.T) {
	var j journal
	ctx, report := bulwark.WithReport(t.Context())
	type boom struct{ n int }
	got := func() (r any) {
		defer func() { r = recover() }()
		_, _ = rollback.Do(ctx, func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "a", j.undo("a"))
			_ = rollback.OnRollback(ctx, "b", j.undo("b"))
			panic(boom{42})
		})
		return nil
	}()
	assert.Equal(t, boom{42}, got, "the panic continues with its own value")
	assert.Equal(t, []string{"b", "a"}, j.names())
	assert.True(t, report.RolledBack())
}

func TestGoexitInFnRunsCompensations(t *testing.T) {
	var j journal
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "a", j.undo("a"))
			runtime.Goexit()
			return 0, nil
		})
	}()
	<-done
	assert.Equal(t, []string{"a"}, j.names())
}

func TestPanicInCompensationIsRecordedAndOthersRun(t *testing.T) {
	var (
		j     journal
		calls int
	)
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "first", j.undo("first"))
		_ = rollback.OnRollback(ctx, "panics", func(context.Context) error {
			calls++
			panic("undo exploded")
		})
		_ = rollback.OnRollback(ctx, "last", j.undo("last"))
		return 0, errCall
	})
	assert.Equal(t, []string{"last", "first"}, j.names(), "the others still run")
	assert.Equal(t, 1, calls, "a panicking compensation is not retried")

	var rbErr *rollback.Error
	require.ErrorAs(t, err, &rbErr)
	assert.ErrorIs(t, err, errCall)
	require.Len(t, rbErr.Failures, 1)
	assert.Equal(t, "panics", rbErr.Failures[0].Step)
	var pe *rollback.PanicError
	require.ErrorAs(t, rbErr.Failures[0].Err, &pe)
	assert.Equal(t, "undo exploded", pe.Value)
	assert.Contains(t, string(pe.Stack), "rollback_test.go", "the stack shows where it panicked")
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

func TestDoInvalidArguments(t *testing.T) {
	ran := false
	fn := func(context.Context) (int, error) { ran = true; return 0, nil }
	for _, tc := range []struct {
		cfg   rollback.Config
		field string
	}{
		{rollback.Config{Attempts: -1}, "Config.Attempts"},
		{rollback.Config{InitialInterval: -time.Second}, "Config.InitialInterval"},
	} {
		_, err := rollback.Do(t.Context(), fn, rollback.WithConfig(tc.cfg))
		assert.ErrorIs(t, err, rollback.ErrInvalid)
		assert.ErrorContains(t, err, tc.field)
		assert.ErrorIs(t, tc.cfg.Validate(), rollback.ErrInvalid)

		_, _, err = rollback.Begin(t.Context(), rollback.WithConfig(tc.cfg))
		assert.ErrorContains(t, err, tc.field)
	}
	assert.False(t, ran, "nothing runs with an invalid config")

	_, err := rollback.Do[int](t.Context(), nil)
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	assert.ErrorContains(t, err, "fn")
	assert.NoError(t, rollback.Config{}.Validate())
	assert.NoError(t, rollback.Config{Timeout: -1}.Validate(), "a negative timeout disables it")
}

func TestOptionsApplyInOrder(t *testing.T) {
	calls := 0
	_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "x", func(context.Context) error {
			calls++
			return errCall
		})
		return 0, errCall
	},
		rollback.WithConfig(rollback.Config{Attempts: 5}),
		nil, // skipped
		func(c *rollback.Config) { c.Attempts = 1 },
	)
	assert.Equal(t, 1, calls, "the later option wins")
}

func TestMiddlewareEachCallIsItsOwnScope(t *testing.T) {
	var j journal
	calls := 0
	fn := rollback.Middleware[int]()(func(ctx context.Context) (int, error) {
		calls++
		name := fmt.Sprint("call", calls)
		_ = rollback.OnRollback(ctx, name, j.undo(name))
		if calls == 2 {
			return 0, errCall
		}
		return calls, nil
	})
	v, err := fn(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	_, err = fn(t.Context())
	assert.Same(t, errCall, err)
	assert.Equal(t, []string{"call2"}, j.names(), "only the failed call's compensation runs")
}

// A retry-like middleware outside rollback: each attempt is its own scope,
// so a failed attempt is undone before the next one starts.
func TestMiddlewareInsideRetryUndoesEachAttempt(t *testing.T) {
	var log []string
	retry := func(next bulwark.Func[int]) bulwark.Func[int] {
		return func(ctx context.Context) (int, error) {
			for {
				v, err := next(ctx)
				if err == nil {
					return v, nil
				}
				log = append(log, "retry")
			}
		}
	}
	attempt := 0
	fn := bulwark.Chain(retry, rollback.Middleware[int]())(func(ctx context.Context) (int, error) {
		attempt++
		log = append(log, fmt.Sprint("do", attempt))
		_ = rollback.OnRollback(ctx, "undo", func(context.Context) error {
			log = append(log, fmt.Sprint("undo", attempt))
			return nil
		})
		if attempt < 3 {
			return 0, errCall
		}
		return attempt, nil
	})
	v, err := fn(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 3, v)
	assert.Equal(t, []string{"do1", "undo1", "retry", "do2", "undo2", "retry", "do3"}, log)
}

func TestMiddlewareInvalid(t *testing.T) {
	ran := false
	fn := rollback.Middleware[int](rollback.WithConfig(rollback.Config{Attempts: -3}))(
		func(context.Context) (int, error) { ran = true; return 1, nil })
	_, err := fn(t.Context())
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	assert.ErrorContains(t, err, "Config.Attempts")
	assert.False(t, ran)

	_, err = rollback.Middleware[int]()(nil)(t.Context())
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	assert.ErrorContains(t, err, "next")
}

func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations")
	}
	ctx := context.Background()
	undo := func(context.Context) error { return nil }
	none := rollback.Middleware[int]()(func(context.Context) (int, error) { return 1, nil })
	three := rollback.Middleware[int]()(func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "a", undo)
		_ = rollback.OnRollback(ctx, "b", undo)
		_ = rollback.OnRollback(ctx, "c", undo)
		return 1, nil
	})
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _ = none(ctx) }),
		"a successful call allocates only its scope")
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _ = three(ctx) }),
		"registrations are held inside the scope")
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() {
		_, _ = rollback.Do(ctx, func(context.Context) (int, error) { return 1, nil })
	}), "Do without options costs the same")
	assert.Equal(t, 0.0, testing.AllocsPerRun(100, func() {
		_ = rollback.OnRollback(ctx, "a", undo)
	}), "OnRollback outside a scope allocates nothing")
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
