package pipeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/callvalue"
	"github.com/bulwark-go/bulwark/rollback"
)

// Undo attaches a compensation to the call, for workflows. When the call
// succeeds inside a rollback scope (rollback.Do, rollback.Begin, a
// rollback.Saga step), undo is registered with that scope under name and
// will receive the call's value: if the workflow later rolls back, undo
// runs (newest first, with the scope's retries and timeout), and then the
// call's idempotency key is forgotten, so that a rerun executes the step
// anew under a new remote key. If undo fails (an error other than
// rollback.ErrNoEffect, or a panic, on its last attempt), the key is kept:
// the effect still exists, and a rerun replays it instead of making a
// second one.
//
// Unlike rollback.OnRollback inside the function, which registers only
// when the function runs, undo is registered whether the call executed or
// its result was replayed by the idempotency layer: a workflow rerun after
// a crash replays its completed steps without running them, and still
// undoes them when a later step fails. Within one workflow (the
// top-level scope and the scopes nested in it) a replayed success of a
// keyed step is the effect of an earlier one: undo (and the forgetting of
// the key) is not registered again when the workflow calls the step once
// more and it replays (see rollback.Once). An executed success is a new
// effect (the stored result of an earlier one expired or was evicted)
// and always registers undo. Once the scope that registered it rolled
// back, the key was forgotten, and the next success registers anew. If
// undo cannot be registered (the scope ended or is full), the call fails
// with an error saying so, and so does the same call made again. Use Undo for keyed steps of a
// workflow; keep OnRollback inside the function for partial effects of an
// attempt that must be undone before a retry. A call answered from the
// fallback cache, a failed call, and a call outside any rollback scope
// register nothing.
//
// undo is a closure: in a journaled workflow it is not durable. If the
// process dies it is lost, the step's effect stays, and a recoverer keeps
// the step's key (see Stack.RegisterForgetting); register a
// rollback.Compensation inside the function for a durable undo.
//
// T must be the call's result type: a call of another result type fails
// with an error wrapping [ErrInvalid], as does an empty name or a nil undo,
// and runs nothing.
func Undo[T any](name string, undo func(ctx context.Context, v T) error) CallOption {
	o := CallOption{kind: optUndo, s: name}
	if undo != nil {
		o.fn = undo
	}
	return o
}

// undoOf returns the call's Undo function as a func of T, and its name;
// nil if the call has none, or an error if it is not a func of T.
func undoOf[T any](executor string, o *callOptions) (func(context.Context, T) error, string, error) {
	name, fn := o.undo()
	if fn == nil {
		return nil, "", nil
	}
	undo, ok := fn.(func(context.Context, T) error)
	if !ok {
		return nil, "", fmt.Errorf("%w: executor %q: Undo %q takes a %s, but the call returns %s",
			ErrInvalid, executor, name, reflect.TypeOf(fn).In(1), reflect.TypeFor[T]())
	}
	return undo, name, nil
}

// runCall runs c through run, as one step of the workflow whose rollback
// scope encloses the call, if there is one (see step).
func runCall[T any](c *call, l *layers, run bulwark.Func[T]) (T, error) {
	undo, undoName, _ := undoOf[T]("", &c.opts) // checked by prepare
	st, ok := newStep(c.Context, c, l, idempotencyKey, undo, undoName)
	if !ok {
		return run(c)
	}
	return st.run(func() (T, error) { return run(c) }, &c.report)
}

// step is a call made inside a workflow's rollback scope (the scope of
// the caller's context) that the workflow must be able to undo: it has an
// idempotency key, whose stored result must be forgotten when the step is
// undone, or an Undo option, or both.
//
// Before the call runs, the forgetting of its key is registered with the
// scope, so that it runs last when the scope rolls back: after the Undo
// option's compensation (registered once the call succeeded) and after
// the compensations the call's attempts registered with
// rollback.OnRollback (handed to the scope when the call succeeded). The
// forgetting is armed only if something undoes the step: an Undo option,
// the enclosing saga step's Undo (rollback.StepHasUndo), or, for a call
// that executed, a compensation registered with the scope during the call
// (rollback.Registered changed). A step that nothing undoes keeps its
// key, executed or replayed, so a rerun replays the effect that still
// exists instead of repeating it. In a journaled workflow
// (rollback.Journaled) the forgetting is a durable rollback.Guard, armed
// with Confirm or dropped with Discard, so that a recoverer in another
// process forgets the key too (see Stack.RegisterForgetting).
type step[T any] struct {
	scope    context.Context // the caller's: its scope is the workflow's
	l        *layers
	key      string // "" without one
	undo     func(context.Context, T) error
	undoName string
}

// newStep returns the step of a call made with the caller's context ctx,
// and false if the call is not one (no key and no Undo, or no open scope).
// keyOf finds the call's idempotency key in keyCtx.
func newStep[T any](ctx, keyCtx context.Context, l *layers, keyOf idempotency.KeyFunc, undo func(context.Context, T) error, undoName string) (step[T], bool) {
	st := step[T]{scope: ctx, l: l, undo: undo, undoName: undoName}
	if l.idem != nil {
		if key, _, ok := keyOf(keyCtx); ok {
			st.key = key
		}
	}
	if st.key == "" && undo == nil {
		return st, false
	}
	return st, rollback.InScope(ctx)
}

// run registers the forgetting of the step's key, runs call, and then
// registers its Undo compensation and arms the forgetting as the outcome
// says. report is the call's. In a journaled workflow the forgetting is
// a durable guard (see Stack.RegisterForgetting), so that a recoverer in
// another process forgets the key too; otherwise an in-memory one.
func (st *step[T]) run(call func() (T, error), report *bulwark.Report) (T, error) {
	var (
		f       *forgetter
		p       rollback.Pending
		durable bool
	)
	if st.key != "" {
		if rollback.Journaled(st.scope) {
			var err error
			if p, durable, err = st.durableGuard(); err != nil {
				var zero T
				return zero, err
			}
		} else {
			f = &forgetter{m: st.l.idem, key: st.key}
			if rollback.OnRollbackGuard(st.scope, st.l.forgetName, f.forget) != nil {
				f = nil // the scope ended or is full: nothing to forget later
			}
		}
	}
	before := rollback.Registered(st.scope) // compensations the call's function registers, see below
	v, err := call()
	if err != nil || report.FromCache() {
		if wait := report.TakeAbandoned(0); wait != nil {
			// A layer gave up on the call while it still runs (the
			// breaker's AbandonOnTimeout): its effect may yet happen.
			report.Abandon(wait) // still there for the layers above
			if st.undo != nil {
				late := func() error { return st.undoLate(wait) }
				var rerr error
				ran := false
				if st.key != "" { // once per key in a workflow, as below
					ran, rerr = rollback.Once(st.scope, onceToken{executor: st.l.executor, key: st.key}, late)
					if !ran && onceRefused(rerr) {
						ran, rerr = true, late()
					}
				} else {
					ran, rerr = true, late()
				}
				if rerr != nil {
					err = errors.Join(err, rerr)
				} else if ran && f != nil {
					f.armed.Store(true) // forgotten only if the late undo did not fail
				}
			}
		}
		// Nothing happened that a rollback could undo (but an abandoned
		// call, above).
		if durable {
			if derr := p.Discard(context.WithoutCancel(st.scope)); derr != nil && err == nil {
				err = fmt.Errorf("pipeline: executor %q: %w", st.l.executor, derr)
			}
		}
		return v, err
	}
	// The step's key is forgotten at rollback only if something undoes the
	// step: the enclosing saga step's Undo, its Undo option (below), or a
	// compensation its function registered while it executed (directly, or
	// handed over by a nested scope or by the call's attempts). A step that
	// nothing undoes keeps its key, executed or replayed: its effect still
	// exists, and a rerun must replay it instead of repeating it.
	replayed := report.Replayed()
	undone := rollback.StepHasUndo(st.scope) || (!replayed && rollback.Registered(st.scope) != before)
	var register func() error // registers the Undo option, if any
	if st.undo != nil {
		undo := st.undo
		register = func() error {
			if rerr := rollback.OnRollback(st.scope, st.undoName, func(ctx context.Context) error { return undo(ctx, v) }); rerr != nil {
				return fmt.Errorf("pipeline: Undo %q not registered: %w", st.undoName, rerr)
			}
			return nil
		}
	}
	var rerr error
	switch {
	case st.key != "" && replayed && (register != nil || undone && (f != nil || durable)):
		// (A replay that would register only the forgetting, whose guard
		// the scope refused, registers nothing: it marks nothing either,
		// so that a later replay whose guard is registered arms it.)
		// Within one workflow, a replayed success of a key is the effect
		// of an earlier success of the workflow, undone once: a retry
		// loop of the workflow calling the step again registers nothing
		// more. The mark is made only once the registration succeeded.
		reg := register
		if reg == nil {
			reg = func() error { return nil } // the forgetting only
		}
		ran, oerr := rollback.Once(st.scope, onceToken{executor: st.l.executor, key: st.key}, reg)
		switch {
		case !ran && oerr == nil: // registered already
			if durable {
				if derr := p.Discard(context.WithoutCancel(st.scope)); derr != nil {
					return v, fmt.Errorf("pipeline: executor %q: %w", st.l.executor, derr)
				}
			}
			return v, nil // an in-memory guard stays unarmed: it does nothing
		case !ran && onceRefused(oerr):
			rerr = reg() // Once refused (the scope ended...): the registration says why
		case !ran:
			// The wait for a registration of the same key by another
			// goroutine of the workflow ended with the caller's context:
			// registering here too could register the Undo twice.
			rerr = fmt.Errorf("pipeline: executor %q: key %q: compensation not registered: %w", st.l.executor, st.key, oerr)
		default:
			rerr = oerr
		}
	case register != nil && st.key != "":
		// An executed success is a new effect (the stored result of an
		// earlier one expired, or was evicted): its Undo is registered
		// whatever the marks say, and marks the key, so that a replay of
		// it later in the workflow registers nothing more.
		ran, oerr := rollback.Once(st.scope, onceToken{executor: st.l.executor, key: st.key}, register)
		if !ran {
			oerr = register()
		}
		rerr = oerr
	case register != nil:
		rerr = register()
	}
	if rerr != nil {
		// The step's effect cannot be undone by this workflow: say so,
		// so that the caller fails the step and the scope rolls back
		// what it holds.
		if durable {
			_ = p.Discard(context.WithoutCancel(st.scope)) // the step fails: its key is kept
		}
		return v, rerr
	}
	if register != nil {
		undone = true
	}
	switch {
	case durable && undone:
		if cerr := p.Confirm(st.scope); cerr != nil {
			return v, fmt.Errorf("pipeline: executor %q: arming the forgetting of key %q: %w", st.l.executor, st.key, cerr)
		}
	case durable:
		if derr := p.Discard(context.WithoutCancel(st.scope)); derr != nil {
			return v, fmt.Errorf("pipeline: executor %q: %w", st.l.executor, derr)
		}
	case f != nil && undone:
		f.armed.Store(true)
	}
	return v, nil
}

// undoLate registers the step's Undo for an abandoned call, whose late
// outcome wait returns: if the workflow rolls back, the compensation waits
// for the call to end (within the compensation's timeout; the wait goes on
// in a goroutine of its own until the call ends) and undoes its effect
// with the late value, or reports rollback.ErrNoEffect if it failed.
// Without it the workflow rolled back while the step's effect happened
// afterwards, never undone.
func (st *step[T]) undoLate(wait func() (any, error)) error {
	undo, name := st.undo, st.undoName // st stays off the heap: runCall's is on the stack
	late := func(ctx context.Context) error {
		type outcome struct {
			v   any
			err error
		}
		ch := make(chan outcome, 1)
		go func() {
			v, err := wait()
			ch <- outcome{v, err}
		}()
		var o outcome
		select {
		case o = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("pipeline: Undo %q: the abandoned call is still running: %w", name, context.Cause(ctx))
		}
		if errors.Is(o.err, callvalue.ErrSucceededLate) {
			// A call inside the step took effect late, and the step has
			// no value for its Undo: the effect cannot be undone here.
			return fmt.Errorf("pipeline: Undo %q: %w", name, o.err)
		}
		if o.err != nil {
			return rollback.ErrNoEffect
		}
		var v T
		if o.v != nil {
			var ok bool
			if v, ok = o.v.(T); !ok {
				return fmt.Errorf("pipeline: Undo %q: the abandoned call's late value is a %T, not the step's %s", name, o.v, reflect.TypeFor[T]())
			}
		}
		return undo(ctx, v)
	}
	if err := rollback.OnRollback(st.scope, st.undoName, late); err != nil {
		return fmt.Errorf("pipeline: Undo %q not registered for the abandoned call: %w", st.undoName, err)
	}
	return nil
}

// onceRefused reports whether err is rollback.Once refusing to run at all
// (no scope, an ended scope, bad input) — the registration itself then
// says why — rather than a wait for a pending mark that the caller's
// context ended.
func onceRefused(err error) bool {
	return errors.Is(err, rollback.ErrNoScope) || errors.Is(err, rollback.ErrScopeEnded) || errors.Is(err, rollback.ErrInvalid)
}

// onceToken marks a keyed step in its workflow (see rollback.Once): its
// Undo and the forgetting of its key are registered once per executor
// and key.
type onceToken struct{ executor, key string }

// forgetter deletes an idempotency key's stored result when a workflow
// rolls back, if the step it belongs to was undone: it is registered as a
// rollback guard before the step runs, so it runs after the step's own
// compensations (its Undo option, the OnRollback compensations its
// attempts handed up, a saga step's Undo) and learns whether any of them
// failed; if one did, the effect still exists and the key is kept, so that
// a rerun replays it instead of making a second one. It reports
// rollback.ErrNoEffect in every case but a store failure: forgetting is
// not a compensation (the Manager emits idempotency:forgotten instead of
// rollback:compensated).
type forgetter struct {
	m     *idempotency.Manager
	key   string
	armed atomic.Bool
}

func (f *forgetter) forget(ctx context.Context, failed bool) error {
	if !f.armed.Load() || failed {
		return rollback.ErrNoEffect
	}
	if _, err := f.m.Forget(ctx, f.key); err != nil {
		return err
	}
	return rollback.ErrNoEffect
}
