package rollback

import (
	"context"
	"fmt"
)

// Step is one step of a [Saga] over a state of type S.
//
// S is a struct the caller defines to hold the saga's inputs and the
// outputs of its steps: each step reads what earlier steps stored in it and
// stores its own results (an ID it created, say), and its Undo reads them
// back. Steps and undos share the state through a typed pointer, so no
// step needs a type assertion or reflection to see another's output.
type Step[S any] struct {
	// Name identifies the step in errors and events. Required, and unique
	// within a saga.
	Name string

	// Do performs the step. It receives the saga's context, which carries
	// its rollback scope (compensations registered with OnRollback from
	// inside Do join the saga's), and the state. Required.
	Do func(ctx context.Context, state *S) error

	// Undo compensates a completed Do. It receives a context that is not
	// cancelled with the caller's, bounded by Config.Timeout, and the
	// state as later steps left it. nil means the step has nothing to
	// undo (a read, say); earlier steps are still compensated.
	Undo func(ctx context.Context, state *S) error

	// MayPartiallyApply says that Do can fail after part of its effect has
	// happened (a batch half written), so Undo also runs when Do itself
	// fails or panics. false (the default) runs Undo only after Do
	// succeeded. Requires Undo.
	MayPartiallyApply bool

	// Compensation is the step's durable compensation, made with
	// [UndoWith]: a registered handler whose arguments are computed from
	// the state before Do runs. It is registered, and journaled when the
	// saga's Config names a Journal, before Do runs (pending), and
	// confirmed after Do succeeded; it runs when the saga rolls back, or
	// at recovery if the process dies, whether or not Do took effect (its
	// handler returns ErrNoEffect when there was nothing to undo). Unlike
	// Undo, it survives a crash. Compensations registered with
	// OnRollback inside Do run before it (they were registered after it),
	// unless Do registered a guard (a keyed pipeline call does, to forget
	// its key once the step is undone): then, after Do succeeded, the
	// Compensation is registered again, confirmed, after everything Do
	// registered (and the pending registration discarded: one more
	// journal write), so that it runs first, as an Undo would, and the
	// guards learn whether it failed.
	// A step has an Undo or a Compensation, not both. The zero value
	// means none.
	Compensation StepCompensation[S]

	// Pivot marks the saga's point of no return: a step that cannot be
	// undone (an e-mail sent, a payment captured). Once a pivot step
	// succeeds, the steps before it are no longer compensated, even if a
	// later step fails; steps after it are compensated back to it. If the
	// pivot step fails, the steps before it are compensated as usual. A
	// pivot step must have no Undo.
	Pivot bool
}

// Saga is a validated, immutable sequence of steps over a state of type S,
// built by [NewSaga]. Run it with [Saga.Run] as often as needed; a Saga is
// safe for concurrent use as long as concurrent runs use different states.
type Saga[S any] struct {
	steps []Step[S]
	cfg   settings
}

// NewSaga validates steps and opts and returns a Saga that runs the steps
// in order. It copies steps, so changing the slice afterwards does not
// change the saga.
//
// NewSaga returns an error wrapping [ErrInvalid] that names the field when
// a step has an empty or duplicate Name, a nil Do, MayPartiallyApply
// without Undo, or Pivot with an Undo, or when opts give an invalid Config.
// A saga with no steps is valid and does nothing.
func NewSaga[S any](steps []Step[S], opts ...Option) (*Saga[S], error) {
	cfg, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]int, len(steps))
	for i, st := range steps {
		switch {
		case st.Name == "":
			return nil, fmt.Errorf("%w Steps[%d].Name: empty", ErrInvalid, i)
		case st.Do == nil:
			return nil, fmt.Errorf("%w Steps[%d].Do: nil (step %q)", ErrInvalid, i, st.Name)
		case st.MayPartiallyApply && st.Undo == nil:
			return nil, fmt.Errorf("%w Steps[%d].MayPartiallyApply: set without an Undo (step %q)", ErrInvalid, i, st.Name)
		case st.Pivot && st.Undo != nil:
			return nil, fmt.Errorf("%w Steps[%d].Undo: set on a pivot step (step %q)", ErrInvalid, i, st.Name)
		case st.Pivot && st.Compensation.before != nil:
			return nil, fmt.Errorf("%w Steps[%d].Compensation: set on a pivot step (step %q)", ErrInvalid, i, st.Name)
		case st.Undo != nil && st.Compensation.before != nil:
			return nil, fmt.Errorf("%w Steps[%d].Compensation: set with an Undo (step %q)", ErrInvalid, i, st.Name)
		}
		if j, dup := seen[st.Name]; dup {
			return nil, fmt.Errorf("%w Steps[%d].Name: %q already used by Steps[%d]", ErrInvalid, i, st.Name, j)
		}
		seen[st.Name] = i
	}
	return &Saga[S]{steps: append([]Step[S](nil), steps...), cfg: cfg}, nil
}

// Run runs the saga's steps in order over state, in a rollback scope of its
// own (nested, like [Do], in a scope that ctx already carries).
//
// When every step succeeds, Run returns nil and the undos of the steps
// since the last pivot are discarded, or handed to the enclosing scope.
// When step i fails, Run compensates: the Undo of step i itself if it
// MayPartiallyApply, then the Undos of steps i-1 … 0 in reverse, stopping
// at the last pivot that succeeded (compensations registered with
// OnRollback inside a step's Do run just after that step's Undo). It
// returns a [*StepError] naming step i and wrapping its error, or an
// [*Error] with that StepError as Cause if a compensation failed.
//
// If ctx is done before a step starts, Run does not start it: it
// compensates the completed steps and returns context.Cause(ctx). A panic
// in a step compensates the completed steps (and the panicking one if it
// MayPartiallyApply), then continues unchanged.
//
// An Undo that panics is handled as a compensation panic is by [Do]: it
// counts as failed, the other Undos run, then the panic continues from Run.
//
// Run returns an error wrapping [ErrInvalid] without running anything if
// g or state is nil.
func (g *Saga[S]) Run(ctx context.Context, state *S) error {
	if g == nil {
		return fmt.Errorf("%w Saga: nil", ErrInvalid)
	}
	if state == nil {
		return fmt.Errorf("%w Saga.Run state: nil", ErrInvalid)
	}
	c := begin(ctx, &g.cfg)
	s := &c.scope
	current := -1 // the step whose Do is running
	returned := false
	defer func() {
		if returned {
			return
		}
		// A step panicked (or called runtime.Goexit).
		if current >= 0 {
			g.partial(s, current, state)
		}
		_ = s.rollback(nil, true)
	}()
	for i := range g.steps {
		st := &g.steps[i]
		if ctx.Err() != nil {
			returned = true
			return s.Rollback(context.Cause(ctx))
		}
		var stepCtx context.Context = c
		if st.Undo != nil || st.Compensation.before != nil {
			stepCtx = undoneStep{c}
		}
		var (
			pending Pending
			again   func(context.Context) error
			mark    int
		)
		if st.Compensation.before != nil {
			p, a, err := st.Compensation.before(c, state)
			if err != nil {
				returned = true
				return s.Rollback(&StepError{Step: st.Name, Err: err})
			}
			pending, again, mark = p, a, s.Len()
		}
		current = i
		err := st.Do(stepCtx, state)
		current = -1
		if err == nil {
			err = confirmStep(c, s, pending, again, mark)
		}
		if err != nil {
			g.partial(s, i, state)
			returned = true
			return s.Rollback(&StepError{Step: st.Name, Err: err})
		}
		if st.Pivot {
			if err := s.discard(); err != nil {
				returned = true
				return s.Rollback(err)
			}
		}
		if st.Undo != nil {
			_ = s.add(entry{name: st.Name, undo: undoer(st.Undo, state)}, true, kindClosure, nil)
		}
	}
	returned = true
	return s.Commit()
}

// confirmStep confirms the Compensation of a step whose Do succeeded. If
// Do registered guards (the pipeline's forgetting of the keys of the calls
// it made), the Compensation must run before them, as the step's Undo
// would: they follow the undo of the whole step. So it is registered
// again, confirmed, after them (again), and the pending registration,
// made before Do, is discarded.
func confirmStep(ctx context.Context, s *Scope, p Pending, again func(context.Context) error, mark int) error {
	if again == nil || !s.guardsAfter(mark) {
		return p.Confirm(ctx)
	}
	if err := again(ctx); err != nil {
		return err
	}
	return p.Discard(ctx)
}

// guardsAfter reports whether the scope holds a guard registered after
// its first mark entries.
func (s *Scope) guardsAfter(mark int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mark > len(s.entries) {
		return false
	}
	for _, e := range s.entries[mark:] {
		if e.guard != nil {
			return true
		}
	}
	return false
}

// partial registers the Undo of failed step i when it may have partly
// applied.
func (g *Saga[S]) partial(s *Scope, i int, state *S) {
	if st := &g.steps[i]; st.MayPartiallyApply {
		_ = s.add(entry{name: st.Name, undo: undoer(st.Undo, state)}, true, kindClosure, nil)
	}
}

func undoer[S any](undo func(context.Context, *S) error, state *S) func(context.Context) error {
	return func(ctx context.Context) error { return undo(ctx, state) }
}

// undoneStep is the context of the Do of a Saga step that has an Undo.
type undoneStep struct{ context.Context }

type undoneStepKey struct{}

func (c undoneStep) Value(key any) any {
	if key == (undoneStepKey{}) {
		return true
	}
	return c.Context.Value(key)
}

// StepHasUndo reports whether ctx belongs to the Do of a [Saga] step that
// has an Undo or a Compensation: if the saga rolls back after the step, that Undo compensates
// everything the step did, whether the calls it made executed or replayed
// results stored by an earlier run. The pipeline package uses it to forget
// the idempotency keys of the calls such a step made, replayed ones
// included, so that a rerun executes them anew. It is false outside a
// saga, in a step without an Undo, and inside a compensation. It is safe
// for concurrent use.
func StepHasUndo(ctx context.Context) bool {
	v, _ := ctx.Value(undoneStepKey{}).(bool)
	return v
}

// StepCompensation is the durable compensation of a [Step], made by
// [UndoWith]. The zero value is none.
type StepCompensation[S any] struct {
	// before registers the compensation, pending, and returns the
	// function that registers it again, confirmed (see confirmStep).
	before func(ctx context.Context, state *S) (Pending, func(context.Context) error, error)
}

// UndoWith returns the durable compensation c for a step of a saga over
// S, with the arguments args computes from the state before the step's Do
// runs: choose identifiers up front (a client-generated id, an
// idempotency key) so that the handler can find what Do did, or learn
// that it did nothing. A nil args or a zero c gives a compensation whose
// registration fails with an error wrapping [ErrInvalid], failing the
// step before its Do runs.
func UndoWith[S, A any](c Compensation[A], args func(state *S) A) StepCompensation[S] {
	return StepCompensation[S]{before: func(ctx context.Context, state *S) (Pending, func(context.Context) error, error) {
		if args == nil {
			return Pending{}, nil, fmt.Errorf("%w UndoWith args: nil (for %q)", ErrInvalid, c.name)
		}
		a := args(state)
		p, err := c.Before(ctx, a)
		return p, func(ctx context.Context) error { return c.OnRollback(ctx, a) }, err
	}}
}
