package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark/rollback"
)

// ForgetGuard is the name under which [Stack.RegisterForgetting]
// registers the durable guard that forgets a keyed step's idempotency key
// after a recoverer undid the step (journaled as rollback.GuardPrefix +
// ForgetGuard).
const ForgetGuard = "bulwark/pipeline: forget idempotency key"

// forgetArgs are the journaled arguments of the forgetting guard.
type forgetArgs struct {
	Executor string `json:"executor"`
	Key      string `json:"key"`
}

// newForgetGuard returns the forgetting guard of s, registered in a
// Registry of its own: a journaled scope checks only that its own
// Registry knows the name (see RegisterForgetting).
func newForgetGuard(s *Stack) rollback.Guard[forgetArgs] {
	g, err := rollback.RegisterGuard(rollback.NewRegistry(), ForgetGuard, s.forgetKey)
	if err != nil {
		panic(err) // unreachable: a new Registry, a valid name and handler
	}
	return g
}

// RegisterForgetting registers in reg the durable guard with which the
// keyed calls of s made inside a journaled workflow (a rollback scope
// whose rollback.Config names a Journal) forget their idempotency keys
// once the workflow's compensations undid them, in process or at
// recovery by rollback.Recover in another process, so that a rerun
// executes an undone step instead of replaying its stored result.
//
// Call it once at start-up, with the Registry of the workflows'
// rollback.Config, in every process that runs such workflows and in every
// recoverer (whose executors must reach the same idempotency Store: a
// shared store such as idempotency/redisstore; the in-memory store of a
// process that died is gone, and with it the keys to forget). A keyed
// call inside a journaled workflow whose Registry lacks it fails with an
// error wrapping [ErrInvalid] and does not run; a recoverer without it
// records the guard as failed with rollback.ErrNotRegistered and leaves it
// in the journal for a later recovery.
//
// The guard follows the rules of rollback.Guard.Before: a step's key is
// forgotten at recovery when the step completed (or, if the process died
// before it could say so, when a durable compensation of the step ran)
// and its compensations, all durable, succeeded. A step whose compensation
// failed keeps its key until a recovery undoes it; a step that nothing
// undoes (it replayed with no Undo, or executed and registered no
// compensation: its guard is discarded), or whose undo includes a
// closure (an [Undo] option, rollback.OnRollback: lost with the
// process), keeps it.
//
// Only one Stack can register in a Registry: RegisterForgetting returns an
// error wrapping [ErrInvalid] if reg is nil or already holds the guard. At
// recovery the guard looks the executor up by name in s, making it from
// the defaults if needed. RegisterForgetting is safe for concurrent use.
func (s *Stack) RegisterForgetting(reg *rollback.Registry) error {
	if s == nil {
		return fmt.Errorf("%w: nil Stack", ErrInvalid)
	}
	if reg == nil {
		return fmt.Errorf("%w: RegisterForgetting registry: nil", ErrInvalid)
	}
	if _, err := rollback.RegisterGuard(reg, ForgetGuard, s.forgetKey); err != nil {
		return fmt.Errorf("%w: RegisterForgetting: %w", ErrInvalid, err)
	}
	return nil
}

// forgetKey is the forgetting guard's handler: it deletes the stored
// result of the key in the executor's idempotency store. It reports
// rollback.ErrNoEffect on success: forgetting is not a compensation (the
// Manager emits idempotency:forgotten).
func (s *Stack) forgetKey(ctx context.Context, a forgetArgs) error {
	e, err := s.executor(a.Executor)
	if err != nil {
		return rollback.Permanent(fmt.Errorf("pipeline: forgetting key %q: %w", a.Key, err))
	}
	m := e.layers.Load().idem
	if m == nil {
		return rollback.Permanent(fmt.Errorf("pipeline: forgetting key %q: executor %q has no Idempotency layer", a.Key, a.Executor))
	}
	if _, err := m.Forget(ctx, a.Key); err != nil {
		return fmt.Errorf("pipeline: executor %q: %w", a.Executor, err)
	}
	return rollback.ErrNoEffect
}

// durableGuard registers the forgetting of the step's key with the
// journaled scope of the step, before the call runs. ok is false when
// the scope refused it (it ended or is full: nothing is forgotten later,
// as for an in-memory guard); err is set when the call must not run.
func (st *step[T]) durableGuard() (p rollback.Pending, ok bool, err error) {
	p, err = st.l.forget.Before(st.scope, forgetArgs{Executor: st.l.executor, Key: st.key})
	switch {
	case err == nil:
		return p, true, nil
	case errors.Is(err, rollback.ErrScopeEnded), errors.Is(err, rollback.ErrTooManyCompensations), errors.Is(err, rollback.ErrNoScope):
		return p, false, nil
	case errors.Is(err, rollback.ErrInvalid):
		return p, false, fmt.Errorf("%w: executor %q: a keyed call in a journaled workflow needs Stack.RegisterForgetting with the workflow's rollback.Config.Registry: %w", ErrInvalid, st.l.executor, err)
	}
	return p, false, fmt.Errorf("pipeline: executor %q: journaling the forgetting of key %q: %w", st.l.executor, st.key, err)
}
