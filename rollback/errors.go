package rollback

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoScope is returned by [OnRollback] when the context carries no
// rollback scope: the code runs without the rollback layer, or inside a
// compensation (compensations see no scope). Nothing was registered. Code
// meant to run with or without the layer can ignore it.
var ErrNoScope = errors.New("rollback: no scope in context")

// ErrScopeEnded is returned by [OnRollback] when the scope in the context
// has already committed or rolled back (for example, from a goroutine that
// outlived the call), and by [Scope.Commit]
// on a scope that has ended or whose enclosing scope has ended. Nothing
// was registered; the undo was not run.
var ErrScopeEnded = errors.New("rollback: scope ended")

// ErrTooManyCompensations is returned by [OnRollback] when the scope
// already holds Config.MaxCompensations compensations: nothing was
// registered, so the step just done cannot be undone by this scope. Fail
// the call (return the error): the scope then rolls back what it holds.
// [Scope.Commit] of a nested scope whose hand-over would exceed the
// enclosing scope's bound returns it too, after rolling the nested work
// back.
var ErrTooManyCompensations = errors.New("rollback: too many compensations in scope")

// ErrNoEffect, returned by a compensation (wrapped or not), says that it
// had nothing to undo: the effect it guards never happened, or was undone
// already. It is not a failure: the compensation is not retried, it is not
// listed in an [Error], and it emits no event (neither rollback:compensated
// nor rollback:failed). A scope whose compensations all report ErrNoEffect
// does not mark the call's bulwark.Report as rolled back.
var ErrNoEffect = errors.New("rollback: nothing to undo")

// StepError is an error of one named step or compensation.
//
// [Saga.Run] returns a *StepError when a step's Do fails, naming that step;
// [Error].Failures lists one StepError per compensation that failed, naming
// the compensation. Unwrap returns Err, so errors.Is and errors.As see
// through it.
type StepError struct {
	// Step is the name of the step or compensation.
	Step string
	// Err is what it returned (the last attempt's error for a
	// compensation), or a *PanicError if it panicked.
	Err error
}

// Error returns `rollback: step "NAME": ERR`.
func (e *StepError) Error() string {
	return "rollback: step " + strconv.Quote(e.Step) + ": " + errString(e.Err)
}

// Unwrap returns Err.
func (e *StepError) Unwrap() error { return e.Err }

// Error is returned when a rollback ran and at least one compensation
// failed (after its retries) or was skipped because Config.StopOnFailure
// stopped the rollback. When every compensation succeeds, the call's own
// error is returned unchanged instead.
//
// Error keeps the call's own error: Unwrap returns Cause, so
// errors.Is(err, original) holds, and errors.As(err, &rbErr) with
// rbErr *rollback.Error gives the compensation failures. The compensation
// errors are deliberately not in the Unwrap chain: a compensation's
// timeout or rate limit says nothing about the call itself, and a retry or
// breaker layer asking errors.Is(err, context.DeadlineExceeded) must not be
// answered by an undo action.
type Error struct {
	// Cause is the error of the call that was rolled back. It is nil when
	// Scope.Rollback was called with a nil cause.
	Cause error
	// Failures lists the compensations that failed, in the order they
	// ran (reverse registration order), each with its last error.
	Failures []StepError
	// Skipped names, in the order they would have run, the compensations
	// that never ran: those that Config.StopOnFailure stopped the
	// rollback before, and, with a Journal, the journaled compensations
	// the owner left to a recoverer because it could not prove it still
	// held the workflow's lease (Journal says why). Empty otherwise.
	Skipped []string
	// Journal is the journal error of the rollback, wrapping
	// [ErrJournal], nil if none or without a journal. When the check of
	// the lease before a journaled compensation failed (wrapping
	// [ErrLeaseLost] when a recoverer claimed the workflow), it is that
	// error: the compensations from there on, listed in Skipped, are the
	// recoverer's, which runs each once. Otherwise it is the first journal
	// write that failed: the compensations ran, and a recoverer may run
	// them again, since the journal could not record it.
	Journal error
}

// Error describes the failed and skipped compensations and the cause, as
// in `rollback: compensation "delete page" failed: notion: 503; call
// error: trello: 500`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("rollback: ")
	for i, f := range e.Failures {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("compensation ")
		b.WriteString(strconv.Quote(f.Step))
		b.WriteString(" failed: ")
		b.WriteString(errString(f.Err))
	}
	if len(e.Skipped) > 0 {
		if len(e.Failures) > 0 {
			b.WriteString("; ")
		}
		b.WriteString("skipped ")
		for i, s := range e.Skipped {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(s))
		}
	}
	if e.Journal != nil {
		if len(e.Failures) > 0 || len(e.Skipped) > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Journal.Error())
	}
	if e.Cause != nil {
		b.WriteString("; call error: ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns Cause, the error of the call that was rolled back.
func (e *Error) Unwrap() error { return e.Cause }

// PanicError is recorded as a compensation's error when the compensation
// panicked. A panicking compensation is not retried; the rollback goes on
// with the other compensations, and once they have all run the panic
// continues with its original value (see [Do]). Events (Config.OnEvent)
// carry the PanicError of a compensation that panicked.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the stack trace of the goroutine at the time of the panic.
	Stack []byte
}

// Error returns "rollback: compensation panicked: VALUE".
func (e *PanicError) Error() string {
	return fmt.Sprintf("rollback: compensation panicked: %v", e.Value)
}

// Unwrap returns Value when it is an error, so errors.Is and errors.As
// see a panicked error; otherwise nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
