package rollback

import (
	"context"
	"errors"
	"fmt"
)

// GuardPrefix starts the journal name of every durable guard: a guard
// registered as "x" with [RegisterGuard] is journaled, and listed in the
// [Registry], as GuardPrefix+"x". [Register] refuses names that start
// with it, so that a recoverer tells guards from compensations by name.
const GuardPrefix = "guard:"

// Guard is a registered, durable guard taking arguments of type A, as
// returned by [RegisterGuard]: the durable form of [OnRollbackGuard],
// whose closure is lost with its process. Use it inside a rollback scope
// with [Guard.Before]. The zero Guard is not usable. A Guard is a small
// value, safe to copy and for concurrent use.
type Guard[A any] struct {
	name string
	fn   func(ctx context.Context, args A) error
}

// Name returns the name the guard was registered under (without
// [GuardPrefix]).
func (g Guard[A]) Name() string { return g.name }

// RegisterGuard adds the guard handler fn to r under name (journaled as
// [GuardPrefix]+name) and returns it as a typed [Guard]. Like a
// compensation's, fn receives its arguments decoded from JSON, must be
// idempotent (a handler interrupted by a crash runs again) and may
// return [ErrNoEffect] to say it had nothing to do (then it emits no
// event and is not counted as a compensation).
//
// Register a guard in every process that runs workflows using it and in
// every recoverer: a recoverer whose Registry lacks it records the guard
// as failed with [ErrNotRegistered] and releases the workflow, so that a
// later recovery with the handler runs it.
//
// RegisterGuard returns an error wrapping [ErrInvalid] naming the
// argument when r or fn is nil, name is empty, or the guard is already
// registered in r. It is safe for concurrent use.
func RegisterGuard[A any](r *Registry, name string, fn func(ctx context.Context, args A) error) (Guard[A], error) {
	switch {
	case r == nil:
		return Guard[A]{}, fmt.Errorf("%w RegisterGuard registry: nil", ErrInvalid)
	case name == "":
		return Guard[A]{}, fmt.Errorf("%w RegisterGuard name: empty", ErrInvalid)
	case fn == nil:
		return Guard[A]{}, fmt.Errorf("%w RegisterGuard fn: nil (for %q)", ErrInvalid, name)
	}
	if err := r.add("RegisterGuard", GuardPrefix+name, decoded(GuardPrefix+name, fn)); err != nil {
		return Guard[A]{}, err
	}
	return Guard[A]{name: name, fn: fn}, nil
}

// Before registers the guard with args, unarmed, with the rollback scope
// carried by ctx, before the step it follows runs; in a scope whose
// Config names a Journal it first writes it to the journal, like
// [Compensation.Before]. Then, once the step is done, call
// [Pending.Confirm] to arm it (its effect is to be undone by the
// compensations registered after the guard) or [Pending.Discard] to drop
// it (the step failed, or nothing will undo it).
//
// Like [OnRollbackGuard], the guard starts a group: the compensations
// registered after it and before the next guard, which run before it
// (newest first). In process, when the scope rolls back, fn runs with
// args if the guard is armed and no compensation of its group failed
// (one that reported [ErrNoEffect] did not fail), with the timeout,
// retries and events of a compensation; otherwise it does nothing.
//
// At recovery ([Recover], after the process died), the journal holds the
// durable part of the workflow only, and a guard runs after the
// compensations of its group that were left to run:
//   - if one of them failed (now or in process, and was not retried
//     successfully), the guard does not run and stays in the journal,
//     listed in RecoveredWorkflow.Held, for the recovery that retries the
//     failed compensation; this holds for a guard whose own run failed
//     (and then stays armed);
//   - otherwise an armed guard runs, also when its group has nothing
//     left to run: arming says that the step registered a compensation
//     (the pipeline confirms its key's guard only then), which may have
//     run in process before the crash or in an earlier recovery;
//   - an unarmed one (the process died during the step, or between the
//     step and Confirm) is armed in the journal by the recovery right
//     before it runs the first compensation of its group: something of
//     the step is being undone. It then follows the rules above, also
//     when that recovery stops before reaching it (context cancelled,
//     process died, claim lost): the next recovery runs it. An unarmed
//     guard whose group has no compensation left to run is dropped;
//   - a guard whose group holds a compensation that is not durable (a
//     closure registered with [OnRollback], a Saga step's Undo) never
//     runs at recovery: that closure was lost with its process, so the
//     step's effect may still exist. It is dropped from the journal when
//     the closure joins its group (one journal write), and still runs in
//     process.
//
// A guard discarded with [Pending.Discard] no longer splits groups at
// recovery: the compensations after it count for the guard before it.
//
// Before returns the errors of [Compensation.Before] (then nothing was
// registered: run the step without the guard, or fail it).
// Without a journal the guard is kept in memory. Before is safe for
// concurrent use.
func (g Guard[A]) Before(ctx context.Context, args A) (Pending, error) {
	if g.fn == nil {
		return Pending{}, fmt.Errorf("%w Guard: zero value (use RegisterGuard)", ErrInvalid)
	}
	fn := g.fn
	st := new(pendingState)
	r := registration{name: g.name, key: GuardPrefix + g.name, what: "Guard", args: args, st: st, kind: kindGuard,
		entry: func(w *workflow, seq int64) entry {
			return entry{name: g.name, guard: func(ctx context.Context, failed bool) error {
				switch {
				case st.dropped.Load():
					return ErrNoEffect // settled discarded by Discard
				case !st.armed.Load():
					if w != nil {
						w.settled(ctx, seq) // nothing to follow: never to run
					}
					return ErrNoEffect
				case failed:
					// Left unsettled: a recoverer retries the failed
					// compensation, then decides.
					return ErrNoEffect
				}
				if w != nil && !st.tainted.Load() { // a tainted guard is not the recoverer's
					if err := w.hold(ctx); err != nil {
						return &handedOver{err}
					}
				}
				err := fn(ctx, args)
				if w != nil && (err == nil || errors.Is(err, ErrNoEffect)) {
					w.settled(ctx, seq)
				}
				return err
			}}
		}}
	return r.register(ctx, false)
}

// Journaled reports whether ctx carries an open rollback scope whose
// workflow has a Journal (its own Config's, or that of the journaled
// scope it is nested in): registrations of a [Compensation] or a
// [Guard] with ctx are then durable. It is safe for concurrent use.
func Journaled(ctx context.Context) bool {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s != nil && s.wf != nil && InScope(ctx)
}
