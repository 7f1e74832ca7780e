package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/rollback"
)

// trip is the state of the test sagas: each step appends to Log and
// stores an ID; undos read the IDs back.
type trip struct {
	Log []string
	IDs map[string]int
}

func newTrip() *trip { return &trip{IDs: map[string]int{}} }

// step returns a step named name that fails with failErr (if not nil) and
// records what it does in the trip.
func step(name string, failErr error) rollback.Step[trip] {
	return rollback.Step[trip]{
		Name: name,
		Do: func(_ context.Context, s *trip) error {
			s.Log = append(s.Log, "do "+name)
			if failErr != nil {
				return failErr
			}
			s.IDs[name] = len(s.IDs) + 1
			return nil
		},
		Undo: func(_ context.Context, s *trip) error {
			s.Log = append(s.Log, fmt.Sprintf("undo %s#%d", name, s.IDs[name]))
			return nil
		},
	}
}

func TestSagaSuccessRunsStepsInOrder(t *testing.T) {
	saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), step("b", nil), step("c", nil)})
	require.NoError(t, err)
	s := newTrip()
	require.NoError(t, saga.Run(t.Context(), s))
	assert.Equal(t, []string{"do a", "do b", "do c"}, s.Log)
	assert.Equal(t, map[string]int{"a": 1, "b": 2, "c": 3}, s.IDs, "outputs stay in the state")
}

func TestSagaFailureUndoesCompletedStepsInReverse(t *testing.T) {
	const n = 10
	steps := make([]rollback.Step[trip], 0, n+1)
	for i := range n {
		steps = append(steps, step(fmt.Sprint("s", i), nil))
	}
	steps = append(steps, step("fails", errCall), step("never", nil))
	saga, err := rollback.NewSaga(steps)
	require.NoError(t, err)

	ctx, report := bulwark.WithReport(t.Context())
	s := newTrip()
	err = saga.Run(ctx, s)

	var se *rollback.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "fails", se.Step)
	assert.ErrorIs(t, err, errCall)
	assert.Equal(t, `rollback: step "fails": call failed`, err.Error())
	assert.True(t, report.RolledBack())

	want := []string{}
	for i := range n {
		want = append(want, fmt.Sprint("do s", i))
	}
	want = append(want, "do fails")
	for i := n - 1; i >= 0; i-- {
		want = append(want, fmt.Sprintf("undo s%d#%d", i, i+1)) // each undo sees its own output
	}
	assert.Equal(t, want, s.Log, "the failed step is not undone, later steps never run")
}

func TestSagaMayPartiallyApply(t *testing.T) {
	partial := step("batch", errCall)
	partial.MayPartiallyApply = true
	saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), partial})
	require.NoError(t, err)
	s := newTrip()
	err = saga.Run(t.Context(), s)
	assert.ErrorIs(t, err, errCall)
	assert.Equal(t, []string{"do a", "do batch", "undo batch#0", "undo a#1"}, s.Log,
		"the failed step that may have partly applied is undone first")
}

func TestSagaPivot(t *testing.T) {
	pivot := rollback.Step[trip]{
		Name:  "send email",
		Pivot: true,
		Do: func(_ context.Context, s *trip) error {
			s.Log = append(s.Log, "do send email")
			return nil
		},
	}
	t.Run("later failure stops at the pivot", func(t *testing.T) {
		saga, err := rollback.NewSaga([]rollback.Step[trip]{
			step("a", nil), step("b", nil), pivot, step("c", nil), step("d", errCall),
		})
		require.NoError(t, err)
		s := newTrip()
		assert.ErrorIs(t, saga.Run(t.Context(), s), errCall)
		assert.Equal(t, []string{"do a", "do b", "do send email", "do c", "do d", "undo c#3"}, s.Log)
	})
	t.Run("pivot failure compensates before it", func(t *testing.T) {
		failing := pivot
		failing.Do = func(_ context.Context, s *trip) error { return errCall }
		saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), step("b", nil), failing})
		require.NoError(t, err)
		s := newTrip()
		assert.ErrorIs(t, saga.Run(t.Context(), s), errCall)
		assert.Equal(t, []string{"do a", "do b", "undo b#2", "undo a#1"}, s.Log)
	})
	t.Run("success after pivot hands nothing before it over", func(t *testing.T) {
		saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), pivot, step("c", nil)})
		require.NoError(t, err)
		s := newTrip()
		_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			require.NoError(t, saga.Run(ctx, s))
			return 0, errCall // the enclosing call fails afterwards
		})
		assert.Same(t, errCall, err)
		assert.Equal(t, []string{"do a", "do send email", "do c", "undo c#2"}, s.Log)
	})
}

func TestSagaStepWithoutUndo(t *testing.T) {
	read := rollback.Step[trip]{Name: "read", Do: func(_ context.Context, s *trip) error {
		s.Log = append(s.Log, "do read")
		return nil
	}}
	saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), read, step("b", errCall)})
	require.NoError(t, err)
	s := newTrip()
	assert.ErrorIs(t, saga.Run(t.Context(), s), errCall)
	assert.Equal(t, []string{"do a", "do read", "do b", "undo a#1"}, s.Log,
		"a step without undo does not stop the compensation of earlier ones")
}

func TestSagaRegistrationsInsideSteps(t *testing.T) {
	withInner := step("outer", nil)
	do := withInner.Do
	withInner.Do = func(ctx context.Context, s *trip) error {
		if err := do(ctx, s); err != nil {
			return err
		}
		return rollback.OnRollback(ctx, "inner", func(context.Context) error {
			s.Log = append(s.Log, "undo inner")
			return nil
		})
	}
	saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), withInner, step("b", errCall)})
	require.NoError(t, err)
	s := newTrip()
	assert.ErrorIs(t, saga.Run(t.Context(), s), errCall)
	assert.Equal(t, []string{"do a", "do outer", "do b", "undo outer#2", "undo inner", "undo a#1"}, s.Log)
}

func TestSagaCompensationFailure(t *testing.T) {
	broken := step("a", nil)
	broken.Undo = func(context.Context, *trip) error { return rollback.Permanent(errors.New("cannot undo a")) }
	saga, err := rollback.NewSaga([]rollback.Step[trip]{broken, step("b", nil), step("c", errCall)})
	require.NoError(t, err)
	s := newTrip()
	err = saga.Run(t.Context(), s)

	var rbErr *rollback.Error
	require.ErrorAs(t, err, &rbErr)
	require.Len(t, rbErr.Failures, 1)
	assert.Equal(t, "a", rbErr.Failures[0].Step)
	var se *rollback.StepError
	require.ErrorAs(t, rbErr.Cause, &se)
	assert.Equal(t, "c", se.Step)
	assert.ErrorIs(t, err, errCall)
	assert.Equal(t, []string{"do a", "do b", "do c", "undo b#2"}, s.Log)
}

func TestSagaCancelledBetweenSteps(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	stop := errors.New("caller left")
	cancelling := step("b", nil)
	do := cancelling.Do
	cancelling.Do = func(c context.Context, s *trip) error {
		cancel(stop)
		return do(c, s)
	}
	saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), cancelling, step("c", nil)})
	require.NoError(t, err)
	s := newTrip()
	err = saga.Run(ctx, s)
	assert.Same(t, stop, err)
	assert.Equal(t, []string{"do a", "do b", "undo b#2", "undo a#1"}, s.Log,
		"no step starts after cancellation, the completed ones are undone")
}

func TestSagaPanicInStep(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run(fmt.Sprint("MayPartiallyApply=", partial), func(t *testing.T) {
			panics := step("p", nil)
			panics.MayPartiallyApply = partial
			panics.Do = func(context.Context, *trip) error { panic("step blew up") }
			saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), panics, step("c", nil)})
			require.NoError(t, err)
			s := newTrip()
			got := func() (r any) {
				defer func() { r = recover() }()
				_ = saga.Run(t.Context(), s)
				return nil
			}()
			assert.Equal(t, "step blew up", got)
			want := []string{"do a", "undo a#1"}
			if partial {
				want = []string{"do a", "undo p#0", "undo a#1"}
			}
			assert.Equal(t, want, s.Log)
		})
	}
}

func TestSagaIsReusable(t *testing.T) {
	saga, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil), step("b", errCall)})
	require.NoError(t, err)
	for range 3 {
		s := newTrip()
		assert.ErrorIs(t, saga.Run(t.Context(), s), errCall)
		assert.Equal(t, []string{"do a", "do b", "undo a#1"}, s.Log)
	}
}

func TestNewSagaCopiesSteps(t *testing.T) {
	steps := []rollback.Step[trip]{step("a", nil)}
	saga, err := rollback.NewSaga(steps)
	require.NoError(t, err)
	steps[0] = step("changed", errCall)
	s := newTrip()
	require.NoError(t, saga.Run(t.Context(), s))
	assert.Equal(t, []string{"do a"}, s.Log)
}

func TestNewSagaValidation(t *testing.T) {
	noop := func(context.Context, *trip) error { return nil }
	for _, tc := range []struct {
		name  string
		steps []rollback.Step[trip]
		field string
	}{
		{"empty name", []rollback.Step[trip]{{Do: noop}}, "Steps[0].Name"},
		{"nil do", []rollback.Step[trip]{step("a", nil), {Name: "b"}}, "Steps[1].Do"},
		{"duplicate", []rollback.Step[trip]{step("a", nil), step("a", nil)}, `Steps[1].Name: "a" already used by Steps[0]`},
		{"partial without undo", []rollback.Step[trip]{{Name: "a", Do: noop, MayPartiallyApply: true}}, "Steps[0].MayPartiallyApply"},
		{"pivot with undo", []rollback.Step[trip]{{Name: "a", Do: noop, Undo: noop, Pivot: true}}, "Steps[0].Undo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saga, err := rollback.NewSaga(tc.steps)
			assert.Nil(t, saga)
			assert.ErrorIs(t, err, rollback.ErrInvalid)
			assert.ErrorContains(t, err, tc.field)
		})
	}
	_, err := rollback.NewSaga([]rollback.Step[trip]{step("a", nil)}, rollback.WithConfig(rollback.Config{Attempts: -1}))
	assert.ErrorContains(t, err, "Config.Attempts")

	saga, err := rollback.NewSaga[trip](nil)
	require.NoError(t, err, "an empty saga is valid")
	assert.NoError(t, saga.Run(t.Context(), newTrip()))
	assert.ErrorIs(t, saga.Run(t.Context(), nil), rollback.ErrInvalid)
}
