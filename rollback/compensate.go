package rollback

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/bulwark-go/bulwark"
)

// compensate runs entries in reverse order for a scope that failed with
// cause, and returns cause, or an *Error when a compensation failed or was
// skipped. It marks the call's Report as rolled back when anything ran.
//
// A panic of a compensation or of the event listener does not stop the
// rollback: the panicking compensation is recorded as failed (a
// *PanicError), the remaining compensations still run, and the first such
// panic is raised again once they have, unless unwinding (the protected
// call's own panic is on its way and continues instead).
func (s *Scope) compensate(entries []entry, cause error, unwinding bool) error {
	if s.wf != nil {
		s.wf.take(s) // its entries are settled as they run
		s.wf.dropGroups(s)
	}
	if len(entries) == 0 {
		if s.wf.ownedBy(s) {
			if err := s.wf.finish(context.WithoutCancel(s.ctx), false); err != nil {
				return &Error{Cause: cause, Journal: err}
			}
		}
		return cause
	}

	// Compensations run on the scope's context without its cancellation:
	// a caller that gave up still gets its undo.
	var base context.Context = unscoped{context.WithoutCancel(s.ctx)}

	var (
		failures []StepError
		skipped  []string
		left     []string // journaled compensations handed over to a recoverer
		lp       callbackPanic
	)
	report := bulwark.ReportFrom(s.ctx)
	failedSinceGuard := false
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.guard != nil {
			failed, guard := failedSinceGuard, e.guard
			failedSinceGuard = false
			e.undo = func(ctx context.Context) error { return guard(ctx, failed) }
		}
		stop := func() {}
		if s.wf != nil {
			stop = s.wf.keepAlive(base)
		}
		err := s.runOne(base, e, &lp, nil)
		stop()
		if isHandedOver(err) {
			// The workflow is no longer provably this owner's: its
			// journaled compensations are the recoverer's, which runs
			// each once. Closures still run: nothing else can.
			if e.guard == nil {
				left = append(left, e.name)
			}
			failedSinceGuard = true // undone elsewhere, or not at all: an in-memory guard must not follow
			continue
		}
		if errors.Is(err, ErrNoEffect) {
			continue // nothing was undone: not a compensation
		}
		report.SetRolledBack()
		if err == nil {
			continue
		}
		failedSinceGuard = true
		failures = append(failures, StepError{Step: e.name, Err: err})
		if s.cfg.stopOnFailure {
			for j := i - 1; j >= 0; j-- {
				skipped = append(skipped, entries[j].name)
			}
			break
		}
	}
	var jerr error
	switch {
	case s.wf.ownedBy(s):
		// Failed, skipped and handed-over compensations, here or in a
		// nested scope, are left to a recoverer.
		jerr = s.wf.finish(base, failures != nil || skipped != nil || left != nil || s.wf.leftAny())
		if first := s.wf.firstErr(); first != nil {
			jerr = first
		}
		if lost := s.wf.lostErr(); lost != nil {
			jerr = lost // why compensations were handed over
		}
	case s.wf != nil:
		if failures != nil || skipped != nil || left != nil {
			s.wf.leave()
		}
		if left != nil {
			jerr = s.wf.lostErr()
		}
	}
	if lp.raised && !unwinding {
		panic(lp.value)
	}
	if failures == nil && jerr == nil {
		return cause
	}
	return &Error{Cause: cause, Failures: failures, Skipped: append(left, skipped...), Journal: jerr}
}

// unscoped hides every rollback scope from a compensation: OnRollback in a
// compensation reports ErrNoScope, and a Do (or a bulwark stack with a
// rollback layer) called by a compensation opens a scope of its own
// instead of nesting in one that has ended or is rolling back.
type unscoped struct{ context.Context }

func (c unscoped) Value(key any) any {
	if key == (scopeKey{}) {
		return nil
	}
	return c.Context.Value(key)
}

// callbackPanic holds the first panic raised by a compensation or the
// event listener during a rollback.
type callbackPanic struct {
	raised bool
	value  any
}

// record keeps v unless an earlier panic was recorded.
func (p *callbackPanic) record(v any) {
	if !p.raised {
		p.raised, p.value = true, v
	}
}

// runOne runs one compensation with its timeout and retries, emits its
// event and returns its final error.
// detail, if not nil, is the event's Detail.
func (s *Scope) runOne(base context.Context, e entry, lp *callbackPanic, detail any) error {
	var start time.Time
	if s.cfg.onEvent != nil {
		start = time.Now()
	}
	ctx := base
	if s.cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(base, s.cfg.timeout)
		defer cancel()
	}
	attempts, pe, err := s.attempt(ctx, e.undo)
	if pe != nil {
		lp.record(pe.Value)
	}
	if pe == nil && (errors.Is(err, ErrNoEffect) || isHandedOver(err)) {
		return err // nothing undone here, nothing to report
	}
	if s.cfg.onEvent != nil {
		ev := bulwark.Event{
			Kind:     bulwark.RollbackCompensated,
			Time:     time.Now(),
			Err:      err,
			Context:  s.ctx,
			Duration: time.Since(start),
			Attempt:  attempts,
			Step:     e.name,
		}
		if detail != nil {
			ev.Detail = detail
		}
		if err != nil {
			ev.Kind = bulwark.RollbackFailed
		}
		s.emit(ev, lp)
	}
	return err
}

// emit delivers ev, catching a listener panic so the rollback can finish.
func (s *Scope) emit(ev bulwark.Event, lp *callbackPanic) {
	defer func() {
		if r := recover(); r != nil {
			lp.record(r)
		}
	}()
	s.cfg.onEvent(ev)
}

// attempt calls undo until it succeeds, fails permanently or panics, the
// attempts are used up, or ctx is done. It returns the number of attempts
// made and the last error, and the *PanicError if undo panicked (then also
// the last error).
func (s *Scope) attempt(ctx context.Context, undo func(context.Context) error) (int, *PanicError, error) {
	var (
		bo    backoff.ExponentialBackOff
		timer *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for n := 1; ; n++ {
		pe, err := call(ctx, undo)
		if err == nil {
			return n, nil, nil
		}
		if pe != nil {
			return n, pe, err
		}
		if errors.Is(err, ErrNoEffect) || isHandedOver(err) {
			return n, nil, err
		}
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			if err == error(perm) {
				return n, nil, perm.Err // drop the mark, keep the error
			}
			return n, nil, err
		}
		if n >= s.cfg.attempts {
			return n, nil, err
		}
		if ctx.Err() != nil {
			return n, nil, timedOut(ctx, err)
		}
		if n == 1 {
			bo = backoff.ExponentialBackOff{
				InitialInterval:     min(s.cfg.interval, maxBackoffInterval),
				RandomizationFactor: backoff.DefaultRandomizationFactor,
				Multiplier:          backoff.DefaultMultiplier,
				MaxInterval:         backoff.DefaultMaxInterval,
				Stop:                backoff.Stop,
				Clock:               backoff.SystemClock,
			}
			bo.Reset()
			timer = time.NewTimer(bo.NextBackOff())
		} else {
			timer.Reset(bo.NextBackOff())
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return n, nil, timedOut(ctx, err)
		}
	}
}

// call runs undo, turning a panic into a *PanicError, returned both as pe
// and as err.
func call(ctx context.Context, undo func(context.Context) error) (pe *PanicError, err error) {
	defer func() {
		if r := recover(); r != nil {
			pe = &PanicError{Value: r, Stack: debug.Stack()}
			err = pe
		}
	}()
	return nil, undo(ctx)
}

// timedOut records that a compensation gave up because its timeout
// expired, keeping its last error.
func timedOut(ctx context.Context, last error) error {
	cause := context.Cause(ctx)
	if errors.Is(last, cause) {
		return last
	}
	return fmt.Errorf("%w (gave up: %w)", last, cause)
}
