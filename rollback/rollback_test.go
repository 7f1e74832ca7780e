package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

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
