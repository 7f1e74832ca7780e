package rollback

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// scopeKey is the context key under which a scope is found.
type scopeKey struct{}

// scopeCtx is the context a scope hands to the protected code. The Scope
// lives inside it, so opening a scope costs a single allocation.
type scopeCtx struct {
	context.Context
	scope Scope
}

func (c *scopeCtx) Value(key any) any {
	if key == (scopeKey{}) {
		return &c.scope
	}
	return c.Context.Value(key)
}

// Scope states.
const (
	scopeOpen uint8 = iota
	scopeCommitted
	scopeRolledBack
)

// entry is one registered compensation.
type entry struct {
	name  string
	undo  func(ctx context.Context) error
	guard func(ctx context.Context, failed bool) error // set instead of undo for OnRollbackGuard
}

// inlineEntries is how many registrations a scope holds without a further
// allocation.
const inlineEntries = 4

// Scope is an open rollback scope: the compensations registered with
// [OnRollback] by code running under its context, waiting for the outcome.
// It is the two-step form of [Do], for call sites that cannot pass their
// work as a function: get one from [Begin], then end it with [Scope.Commit]
// on success or [Scope.Rollback] on failure.
//
// A Scope is safe for concurrent use. The first of Commit and Rollback
// ends it; registrations after that are refused with [ErrScopeEnded].
// A Scope is only obtained from Begin; its zero value is not usable.
type Scope struct {
	ctx   *scopeCtx // the context this scope is part of; its parent's scope is the enclosing one (see parentScope)
	marks *marks    // tokens of Once, on the outermost scope only; nil until the first
	cfg   settings
	wf    *workflow // the journaled workflow, nil without a journal

	mu      sync.Mutex
	state   uint8
	gained  uint32  // compensations ever added (not guards), see Registered; in state's padding
	entries []entry // in registration order; starts on inline
	inline  [inlineEntries]entry
}

// Begin opens a rollback scope under ctx and returns the context to run
// the protected work with, and the Scope to end it with. If ctx already
// carries an open scope, the new one is nested in it: when it commits, its
// compensations are handed to the enclosing scope instead of discarded.
//
// The usual pattern, which also rolls back on a panic:
//
//	ctx, sc, err := rollback.Begin(ctx)
//	if err != nil {
//		return err
//	}
//	defer sc.Rollback(nil) // a no-op once the scope has ended
//	if err := work(ctx); err != nil {
//		return sc.Rollback(err)
//	}
//	return sc.Commit()
//
// Begin returns an error wrapping [ErrInvalid] only when opts give an
// invalid Config; it is safe for concurrent use.
func Begin(ctx context.Context, opts ...Option) (context.Context, *Scope, error) {
	cfg, err := resolve(opts)
	if err != nil {
		return ctx, nil, err
	}
	c := begin(ctx, &cfg)
	return c, &c.scope, nil
}

// begin allocates a scope under ctx.
func begin(ctx context.Context, cfg *settings) *scopeCtx {
	parent, _ := ctx.Value(scopeKey{}).(*Scope)
	c := &scopeCtx{Context: ctx} // c.Context is never changed: parentScope finds parent there
	s := &c.scope
	s.ctx = c
	s.cfg = *cfg
	s.entries = s.inline[:0]
	if parent != nil && parent.wf != nil {
		s.wf = parent.wf
	} else if cfg.durable != nil {
		s.wf = newWorkflow(cfg.durable, s)
	}
	return c
}

// InScope reports whether ctx carries an open rollback scope, that is
// whether [OnRollback] with ctx would register a compensation. Code that
// builds a compensation only to register it can ask first and save the
// work when nothing would register it. InScope is safe for concurrent use.
func InScope(ctx context.Context) bool {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == scopeOpen
}

// OnRollback registers undo, under name, with the rollback scope carried
// by ctx: if the protected call fails or panics, undo runs, in reverse
// order of registration, on a context that is not cancelled with the
// caller's (see [Do]). If the call succeeds, undo is discarded, or handed
// to the enclosing scope when the scope is nested.
//
// Register a compensation right after the step it undoes has completed:
// only steps that completed are compensated. The name identifies the
// compensation in events and in [Error].
//
// OnRollback returns nil when undo was registered, and otherwise reports
// why it was not, without running it:
//   - [ErrNoScope] when ctx carries no rollback scope (the code runs without
//     the rollback layer, or inside a compensation; ignore this error to run
//     either way);
//   - [ErrScopeEnded] when the scope has already committed or rolled back;
//   - [ErrTooManyCompensations] when the scope already holds
//     Config.MaxCompensations compensations;
//   - an error wrapping [ErrInvalid] when name is empty or undo is nil.
//
// The closure lives in memory: it is not durable, even in a scope whose
// Config names a Journal; if the process dies, it is lost. For a
// compensation that survives a crash use a registered [Compensation].
//
// OnRollback is safe for concurrent use: many goroutines of the same call
// may register with the same scope.
func OnRollback(ctx context.Context, name string, undo func(ctx context.Context) error) error {
	if name == "" {
		return fmt.Errorf("%w OnRollback name: empty", ErrInvalid)
	}
	if undo == nil {
		return fmt.Errorf("%w OnRollback undo: nil (for %q)", ErrInvalid, name)
	}
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	if s == nil {
		return ErrNoScope
	}
	return s.add(entry{name: name, undo: undo}, false, kindClosure, nil)
}

// OnRollbackGuard registers a guard with the rollback scope of ctx, as
// [OnRollback] registers a compensation: if the scope rolls back, fn runs
// in reverse order like a compensation (with the same timeout, retries and
// events), after the compensations registered after it, and learns
// whether any of those that ran since the previous guard failed (a
// compensation that reported [ErrNoEffect] did not fail). Guards split a
// scope's compensations into groups, one per guard: the entries
// registered after a guard and before the next one.
//
// It is meant for work that must follow an undo only if the undo
// succeeded: the pipeline registers a guard before each keyed step of a
// workflow, to forget the step's idempotency key only if the
// compensations of that step succeeded (otherwise its effect still exists,
// and a rerun must replay it rather than make a second one). A guard
// returns the errors of OnRollback: [ErrInvalid] for an empty name or a
// nil fn, [ErrNoScope], [ErrScopeEnded], [ErrTooManyCompensations].
//
// Like an OnRollback closure, fn lives in memory: it is lost if the
// process dies. [Guard] is its durable form, run at recovery too.
func OnRollbackGuard(ctx context.Context, name string, fn func(ctx context.Context, failed bool) error) error {
	if name == "" {
		return fmt.Errorf("%w OnRollbackGuard name: empty", ErrInvalid)
	}
	if fn == nil {
		return fmt.Errorf("%w OnRollbackGuard fn: nil (for %q)", ErrInvalid, name)
	}
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	if s == nil {
		return ErrNoScope
	}
	return s.add(entry{name: name, guard: fn}, false, kindGuard, nil)
}

// add registers e, of kind k (g: the state of a durable guard), unless
// the scope has ended or, without force, holds its maximum.
func (s *Scope) add(e entry, force bool, k addKind, g *pendingState) error {
	if err := s.append(e, force); err != nil {
		return err
	}
	if s.wf != nil {
		s.wf.taint(s.ctx, s.wf.noteAdd(s, k, g))
	}
	return nil
}

// append appends e to the scope's entries, unless the scope has ended or,
// without force, holds its maximum.
func (s *Scope) append(e entry, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != scopeOpen {
		return ErrScopeEnded
	}
	if !force && len(s.entries) >= int(s.cfg.maxEntries) {
		return ErrTooManyCompensations
	}
	s.entries = append(s.entries, e)
	if e.guard == nil {
		s.gained++
	}
	return nil
}

// adopt appends the compensations of a nested scope that committed,
// unless this scope has ended or they would exceed its maximum.
func (s *Scope) adopt(es []entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != scopeOpen {
		return ErrScopeEnded
	}
	if len(es) > int(s.cfg.maxEntries)-len(s.entries) {
		return ErrTooManyCompensations
	}
	s.entries = append(s.entries, es...)
	for i := range es {
		if es[i].guard == nil {
			s.gained++
		}
	}
	return nil
}

// discard drops every registration so far (a saga's pivot step
// succeeded), unless the scope has ended, and records the journaled ones
// as discarded.
func (s *Scope) discard() error {
	var dropped []int64
	s.mu.Lock()
	if s.state == scopeOpen {
		if s.wf != nil {
			dropped = s.wf.take(s)
		}
		clear(s.entries)
		s.entries = s.entries[:0]
		if s.wf != nil {
			s.wf.dropGroups(s)
		}
	}
	s.mu.Unlock()
	for _, seq := range dropped {
		if err := s.wf.settle(context.WithoutCancel(s.ctx), seq, StatusDiscarded); err != nil {
			return err
		}
	}
	return nil
}

// end moves an open scope to state and returns its registrations; ok is
// false when the scope had already ended. Once ended, entries is never
// written again, so the caller may read it without the lock.
func (s *Scope) end(state uint8) (entries []entry, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != scopeOpen {
		return nil, false
	}
	s.state = state
	return s.entries, true
}

// Commit ends the scope successfully. Its compensations are discarded, or,
// when the scope is nested in another open scope, handed to that scope,
// so that a later failure of the enclosing call also undoes this work.
//
// Commit returns nil on success and [ErrScopeEnded] if the scope had
// already ended. If the enclosing scope has ended meanwhile (the nested
// work outlived the call that started it), nothing could ever undo this
// work any more, so Commit rolls it back instead and returns ErrScopeEnded,
// or an [*Error] with Cause ErrScopeEnded if a compensation failed. It
// does the same, with [ErrTooManyCompensations], when the hand-over would
// exceed the enclosing scope's Config.MaxCompensations.
//
// With a Journal, committing the top-level scope removes its workflow
// from the journal; if that write fails, Commit returns an error wrapping
// [ErrJournal]: the workflow is then still in the journal and will be
// rolled back by a recoverer once its lease expires. When the write
// fails with [ErrLeaseLost] (the owner stalled past its lease and a
// recoverer claimed the workflow, to undo its journaled compensations),
// Commit rolls back in process what no recoverer knows (the closures
// registered with [OnRollback], a Saga's step Undos) and returns an
// [*Error] whose Cause and Journal wrap ErrLeaseLost, listing the
// journaled compensations left to the recoverer in Skipped.
//
// Commit is safe for concurrent use. On a nil Scope it returns an error
// wrapping [ErrInvalid].
func (s *Scope) Commit() error {
	if s == nil {
		return errNilScope
	}
	entries, ok := s.end(scopeCommitted)
	if !ok {
		return ErrScopeEnded
	}
	if s.wf.ownedBy(s) {
		// The workflow ended well. In an enclosing scope without a
		// journal, its compensations live on in memory only.
		if err := s.wf.finish(context.WithoutCancel(s.ctx), false); err != nil {
			if errors.Is(err, ErrLeaseLost) {
				// A recoverer took the workflow over and undoes its
				// journaled compensations: undo the closures too,
				// which no recoverer knows.
				s.setState(scopeRolledBack)
				return s.compensate(entries, s.wf.lose(err), false)
			}
			return err
		}
	}
	if len(entries) == 0 {
		return nil
	}
	parent := s.parentScope()
	if parent == nil {
		return nil
	}
	if err := parent.adopt(entries); err != nil {
		s.setState(scopeRolledBack) // its work is undone, not handed over
		return s.compensate(entries, err, false)
	}
	if s.wf != nil {
		s.wf.move(s, parent)
		s.wf.taint(s.ctx, s.wf.noteMove(s, parent))
	}
	return nil
}

// parentScope returns the enclosing scope, nil if none: the scope of the
// context the scope was opened under. It is not stored in the Scope,
// which stays in its size class.
func (s *Scope) parentScope() *Scope {
	p, _ := s.ctx.Context.Value(scopeKey{}).(*Scope)
	return p
}

// setState moves an ended scope to state.
func (s *Scope) setState(state uint8) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = state
}

// errNilScope is returned by the methods of a nil *Scope.
var errNilScope = fmt.Errorf("%w Scope: nil", ErrInvalid)

// Rollback ends the scope as failed: it runs the registered compensations
// in reverse registration order, as documented on [Do], and returns cause
// when all of them succeeded (or there were none), or an [*Error] whose
// Cause is cause when any failed or was skipped.
//
// Rolling back a scope that has already ended (committed or rolled back)
// is a no-op that returns cause unchanged, so `defer sc.Rollback(nil)` is
// safe after an explicit Commit or Rollback.
//
// A compensation or listener that panics does not stop the rollback: the
// remaining compensations run, then the first such panic continues from
// Rollback with its original value. Called by a deferred function while a
// panic unwinds, Rollback then replaces that panic (Go reports both);
// [Do], [Middleware] and [Saga] avoid this by letting the call's own panic
// win.
//
// Rollback is safe for concurrent use; compensations run on the goroutine
// of the call that ended the scope. On a nil Scope it runs nothing and
// returns an error wrapping [ErrInvalid] (and cause, if not nil).
func (s *Scope) Rollback(cause error) error {
	if s == nil {
		if cause == nil {
			return errNilScope
		}
		return fmt.Errorf("%w (rolling back after: %w)", errNilScope, cause)
	}
	return s.rollback(cause, false)
}

// rollback is Rollback. unwinding says that the protected call panicked
// or called runtime.Goexit: its own panic then continues, and a panic of a
// compensation or listener is reported through events only.
func (s *Scope) rollback(cause error, unwinding bool) error {
	entries, ok := s.end(scopeRolledBack)
	if !ok {
		return cause
	}
	return s.compensate(entries, cause, unwinding)
}

// Len returns how many compensations are registered with the scope and
// not yet run, committed or handed over: at most Config.MaxCompensations
// (plus a Saga's own step Undos). It is safe for concurrent use, and 0 on
// a nil Scope.
func (s *Scope) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != scopeOpen {
		return 0
	}
	return len(s.entries)
}
