package rollback_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/rollback"
)

const forever = time.Duration(math.MaxInt64)

var errDown = errors.New("down")

// failingUndo counts its calls and the time of each, and fails with errDown
// the first fails times.
type failingUndo struct {
	fails int
	calls []time.Time
	ctxs  []context.Context
	errs  []error // ctx.Err() at each call
}

func (f *failingUndo) undo(ctx context.Context) error {
	f.calls = append(f.calls, time.Now())
	f.ctxs = append(f.ctxs, ctx)
	f.errs = append(f.errs, ctx.Err())
	if len(f.calls) <= f.fails {
		return errDown
	}
	return nil
}

// rollBackOne runs one call that registers u and fails, under cfg.
func rollBackOne(cfg rollback.Config, u func(context.Context) error) error {
	_, err := rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
		if err := rollback.OnRollback(ctx, "undo", u); err != nil {
			return 0, err
		}
		return 0, errCall
	}, rollback.WithConfig(cfg))
	return err
}

// Every duration field of Config at math.MaxInt64 means "as long as
// possible": the compensation's backoff wait does not wrap around to an
// immediate retry, and its deadline does not land in the past.
func TestDurationFieldsAtMaxInt64(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"InitialInterval, bounded by Timeout", func(t *testing.T) {
			// Jitter is random: repeat so that a wrap-around in half of
			// the draws cannot go unseen.
			for range 16 {
				u := &failingUndo{fails: math.MaxInt}
				start := time.Now()
				err := rollBackOne(rollback.Config{InitialInterval: forever, Timeout: time.Hour}, u.undo)
				assert.Len(t, u.calls, 1, "the wait after the first attempt lasts until the timeout")
				assert.Equal(t, time.Hour, time.Since(start))
				var rbErr *rollback.Error
				require.ErrorAs(t, err, &rbErr)
				assert.ErrorIs(t, rbErr.Failures[0].Err, context.DeadlineExceeded)
				assert.ErrorIs(t, rbErr.Failures[0].Err, errDown)
			}
		}},
		{"InitialInterval without a timeout", func(t *testing.T) {
			u := &failingUndo{fails: 1}
			start := time.Now()
			err := rollBackOne(rollback.Config{InitialInterval: forever, Timeout: -1, Attempts: 2}, u.undo)
			assert.ErrorIs(t, err, errCall)
			var rbErr *rollback.Error
			assert.False(t, errors.As(err, &rbErr), "the second attempt succeeded")
			require.Len(t, u.calls, 2)
			assert.GreaterOrEqual(t, u.calls[1].Sub(start), time.Duration(1<<60),
				"the wait is as long as possible (2^61ns ± 50%), not negative")
		}},
		{"Timeout", func(t *testing.T) {
			u := &failingUndo{fails: 2}
			err := rollBackOne(rollback.Config{Timeout: forever}, u.undo)
			assert.ErrorIs(t, err, errCall)
			var rbErr *rollback.Error
			assert.False(t, errors.As(err, &rbErr), "the third attempt succeeded")
			require.Len(t, u.calls, 3)
			for _, ctx := range u.ctxs {
				deadline, ok := ctx.Deadline()
				require.True(t, ok)
				assert.True(t, deadline.After(time.Now().Add(100*365*24*time.Hour)), "the deadline is far ahead, not wrapped into the past: %v", deadline)
			}
			assert.Equal(t, []error{nil, nil, nil}, u.errs, "each attempt ran on a live context")
		}},
		{"Timeout and InitialInterval", func(t *testing.T) {
			u := &failingUndo{fails: 1}
			err := rollBackOne(rollback.Config{Timeout: forever, InitialInterval: forever, Attempts: 2}, u.undo)
			assert.ErrorIs(t, err, errCall)
			assert.Len(t, u.calls, 2, "a very long wait, then the second attempt")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { synctest.Test(t, tc.run) })
	}
}

// A compensation that panics counts as failed, the others run, the scope
// has ended, then the panic reaches the caller; the middleware works
// normally for the next call.
func TestPanickingCompensationReleasesTheScope(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			j      journal
			sctx   context.Context
			armed  = true
			report *bulwark.Report
		)
		mw := rollback.Middleware[int](rollback.WithConfig(rollback.Config{Timeout: time.Minute}))
		call := mw(func(ctx context.Context) (int, error) {
			sctx = ctx
			_ = rollback.OnRollback(ctx, "a", j.undo("a"))
			_ = rollback.OnRollback(ctx, "panics", func(context.Context) error {
				if armed {
					panic("undo exploded")
				}
				return nil
			})
			_ = rollback.OnRollback(ctx, "c", j.undo("c"))
			return 0, errCall
		})
		var ctx context.Context
		ctx, report = bulwark.WithReport(context.Background())
		assert.PanicsWithValue(t, "undo exploded", func() { _, _ = call(ctx) })
		assert.Equal(t, []string{"c", "a"}, j.names(), "the others ran before the panic went on")
		assert.True(t, report.RolledBack())
		assert.False(t, rollback.InScope(sctx), "the scope has ended")
		assert.ErrorIs(t, rollback.OnRollback(sctx, "late", j.undo("late")), rollback.ErrScopeEnded)

		armed = false
		_, err := call(context.Background())
		assert.Same(t, errCall, err, "the next call rolls back normally")
		assert.Equal(t, []string{"c", "a", "c", "a"}, j.names())
	})
}

func TestPanickingCompensationWithStopOnFailure(t *testing.T) {
	var j journal
	got := func() (r any) {
		defer func() { r = recover() }()
		_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "a", j.undo("a"))
			_ = rollback.OnRollback(ctx, "panics", func(context.Context) error { panic("undo") })
			return 0, errCall
		}, func(c *rollback.Config) { c.StopOnFailure = true })
		return nil
	}()
	assert.Equal(t, "undo", got)
	assert.Empty(t, j.names(), "StopOnFailure stops at the panicking compensation")
}

// The first of several panics (compensations, listener) propagates.
func TestFirstCallbackPanicPropagates(t *testing.T) {
	var j journal
	got := func() (r any) {
		defer func() { r = recover() }()
		_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "a", func(context.Context) error { panic("a") })
			_ = rollback.OnRollback(ctx, "b", j.undo("b"))
			_ = rollback.OnRollback(ctx, "c", func(context.Context) error { panic("c") })
			return 0, errCall
		}, func(c *rollback.Config) {
			c.OnEvent = func(ev bulwark.Event) {
				if ev.Step == "b" {
					panic("listener")
				}
			}
		})
		return nil
	}()
	assert.Equal(t, "c", got, "compensations run in reverse: c panicked first")
	assert.Equal(t, []string{"b"}, j.names())
}

// A panicking compensation of a nested scope propagates through the
// enclosing call, whose own compensations then run as for any panic.
func TestPanickingCompensationInNestedScope(t *testing.T) {
	var j journal
	got := func() (r any) {
		defer func() { r = recover() }()
		_, _ = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "outer", j.undo("outer"))
			return rollback.Do(ctx, func(ctx context.Context) (int, error) {
				_ = rollback.OnRollback(ctx, "inner", j.undo("inner"))
				_ = rollback.OnRollback(ctx, "panics", func(context.Context) error { panic("inner undo") })
				return 0, errCall
			})
		})
		return nil
	}()
	assert.Equal(t, "inner undo", got)
	assert.Equal(t, []string{"inner", "outer"}, j.names())
}

func TestSagaPanickingUndo(t *testing.T) {
	panicky := step("b", nil)
	panicky.Undo = func(context.Context, *trip) error { panic("undo b") }
	saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), panicky, step("c", errCall)})
	require.NoError(t, err)
	tr := newTrip()
	assert.PanicsWithValue(t, "undo b", func() { _ = saga.Run(t.Context(), tr) })
	assert.Equal(t, []string{"do a", "do b", "do c", "undo a#1"}, tr.Log, "a is undone before b's panic goes on")

	// The saga runs normally afterwards.
	ok, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), step("c", errCall)})
	require.NoError(t, err)
	tr = newTrip()
	assert.ErrorIs(t, ok.Run(t.Context(), tr), errCall)
}

// Every exported entry point that takes a function, given nil: an error
// wrapping ErrInvalid, nothing run, nothing registered.
func TestNilFunctionsWrapErrInvalid(t *testing.T) {
	var j journal
	ctx, sc, err := rollback.Begin(t.Context())
	require.NoError(t, err)
	require.NoError(t, rollback.OnRollback(ctx, "kept", j.undo("kept")))
	rctx, report := bulwark.WithReport(t.Context())

	var nilSaga *rollback.Saga[trip]
	var nilScope *rollback.Scope
	for name, call := range map[string]func() error{
		"Do nil fn": func() error { _, err := rollback.Do[int](rctx, nil); return err },
		"Middleware nil next": func() error {
			_, err := rollback.Middleware[int]()(nil)(rctx)
			return err
		},
		"OnRollback nil undo":     func() error { return rollback.OnRollback(ctx, "x", nil) },
		"NewSaga nil Step.Do":     func() error { _, err := rollback.NewSaga([]rollback.Step[trip]{{Name: "x"}}); return err },
		"Saga.Run nil saga":       func() error { return nilSaga.Run(rctx, newTrip()) },
		"Saga.Run nil state":      func() error { s, _ := rollback.NewSaga[trip](nil); return s.Run(rctx, nil) },
		"Scope.Commit nil scope":  func() error { return nilScope.Commit() },
		"Scope.Rollback nil":      func() error { return nilScope.Rollback(nil) },
		"Scope.Rollback nil with": func() error { return nilScope.Rollback(errCall) },
	} {
		var err error
		require.NotPanics(t, func() { err = call() }, name)
		assert.ErrorIs(t, err, rollback.ErrInvalid, name)
	}
	assert.ErrorIs(t, nilScope.Rollback(errCall), errCall, "Rollback of a nil scope keeps the cause")
	assert.Zero(t, nilScope.Len())
	assert.Equal(t, 1, sc.Len(), "nothing was registered")
	assert.False(t, report.RolledBack())
	assert.Empty(t, j.names(), "nothing ran")
	require.NoError(t, sc.Commit())
}

func TestMaxCompensations(t *testing.T) {
	t.Run("OnRollback beyond it", func(t *testing.T) {
		var j journal
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			for i := range 3 {
				require.NoError(t, rollback.OnRollback(ctx, strconv.Itoa(i), j.undo(strconv.Itoa(i))))
			}
			err := rollback.OnRollback(ctx, "3", j.undo("3"))
			require.ErrorIs(t, err, rollback.ErrTooManyCompensations)
			return 0, err
		}, func(c *rollback.Config) { c.MaxCompensations = 3 })
		assert.ErrorIs(t, err, rollback.ErrTooManyCompensations)
		assert.Equal(t, []string{"2", "1", "0"}, j.names(), "what the scope holds is rolled back")
	})
	t.Run("nested hand-over beyond it", func(t *testing.T) {
		var j journal
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "outer", j.undo("outer"))
			_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
				_ = rollback.OnRollback(ctx, "inner1", j.undo("inner1"))
				_ = rollback.OnRollback(ctx, "inner2", j.undo("inner2"))
				return 1, nil
			})
			assert.ErrorIs(t, err, rollback.ErrTooManyCompensations)
			assert.Equal(t, []string{"inner2", "inner1"}, j.names(), "the nested work is undone at once")
			return 0, nil
		}, func(c *rollback.Config) { c.MaxCompensations = 2 })
		require.NoError(t, err)
		assert.Equal(t, []string{"inner2", "inner1"}, j.names())
	})
	t.Run("a saga's own undos are always accepted", func(t *testing.T) {
		fill := step("fill", nil)
		fill.Do = func(ctx context.Context, s *trip) error {
			s.Log = append(s.Log, "do fill")
			return rollback.OnRollback(ctx, "inside", func(context.Context) error {
				s.Log = append(s.Log, "undo inside")
				return nil
			})
		}
		saga, err := rollback.NewSaga([]rollback.Step[trip]{fill, step("b", nil), step("c", errCall)},
			func(c *rollback.Config) { c.MaxCompensations = 1 })
		require.NoError(t, err)
		tr := newTrip()
		assert.ErrorIs(t, saga.Run(t.Context(), tr), errCall)
		assert.Equal(t, []string{"do fill", "do b", "do c", "undo b#1", "undo fill#0", "undo inside"}, tr.Log)
	})
	t.Run("math.MaxInt saturates", func(t *testing.T) {
		ctx, sc, err := rollback.Begin(t.Context(), func(c *rollback.Config) { c.MaxCompensations = math.MaxInt })
		require.NoError(t, err)
		require.NoError(t, rollback.OnRollback(ctx, "x", func(context.Context) error { return nil }), "a huge bound does not wrap around to a negative one")
		assert.Equal(t, 1, sc.Len())
		require.NoError(t, sc.Commit())
	})
	t.Run("negative is invalid", func(t *testing.T) {
		err := rollback.Config{MaxCompensations: -1}.Validate()
		assert.ErrorIs(t, err, rollback.ErrInvalid)
		assert.ErrorContains(t, err, "Config.MaxCompensations")
	})
	t.Run("default", func(t *testing.T) {
		ctx, sc, err := rollback.Begin(t.Context())
		require.NoError(t, err)
		for i := range rollback.DefaultMaxCompensations {
			require.NoError(t, rollback.OnRollback(ctx, "x", func(context.Context) error { return nil }), i)
		}
		assert.ErrorIs(t, rollback.OnRollback(ctx, "x", func(context.Context) error { return nil }), rollback.ErrTooManyCompensations)
		assert.Equal(t, rollback.DefaultMaxCompensations, sc.Len())
		require.NoError(t, sc.Commit())
	})
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A scope's memory is bounded by MaxCompensations whatever the code under
// it does, and nothing outlives a scope: 1e6 registrations in one
// long-running scope, and 1e6 scopes opened and ended, leave the heap
// where it was.
func TestMemoryBoundedUnderChurn(t *testing.T) {
	ops := 1_000_000
	if raceEnabled {
		ops = 100_000
	}
	undo := func(context.Context) error { return nil }

	t.Run("one long-running scope", func(t *testing.T) {
		ctx, sc, err := rollback.Begin(t.Context(), func(c *rollback.Config) { c.MaxCompensations = 1000 })
		require.NoError(t, err)
		for range 1000 {
			require.NoError(t, rollback.OnRollback(ctx, "step", undo))
		}
		before := heapInUse()
		refused := 0
		for range ops {
			if errors.Is(rollback.OnRollback(ctx, "step", undo), rollback.ErrTooManyCompensations) {
				refused++
			}
		}
		after := heapInUse()
		assert.Equal(t, ops, refused)
		assert.Equal(t, 1000, sc.Len())
		if after > before {
			assert.Less(t, after-before, uint64(256<<10), "heap grew from %d to %d bytes", before, after)
		}
		require.NoError(t, sc.Commit())
	})

	t.Run("scopes opened and ended", func(t *testing.T) {
		outerCtx, outer, err := rollback.Begin(t.Context())
		require.NoError(t, err)
		run := func(n int) {
			for i := range n {
				_, _ = rollback.Do(outerCtx, func(ctx context.Context) (int, error) {
					for range 6 {
						_ = rollback.OnRollback(ctx, "step", undo)
					}
					if i%2 == 0 {
						return 0, errCall // rolled back
					}
					return 0, nil // handed over to outer... which is bounded
				}, func(c *rollback.Config) { c.Timeout = -1 })
				if outer.Len() >= 6000 {
					require.NoError(t, outer.Rollback(nil))
					outerCtx, outer, err = rollback.Begin(t.Context())
					require.NoError(t, err)
				}
			}
		}
		run(10_000)
		before := heapInUse()
		run(ops / 6)
		after := heapInUse()
		if after > before {
			assert.Less(t, after-before, uint64(1<<20), "heap grew from %d to %d bytes", before, after)
		}
		require.NoError(t, outer.Commit())
	})
}
