package rollback

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/internal/sat"
)

// Recovered is the Detail of the events (rollback:compensated,
// rollback:failed) of a compensation run by [Recover].
type Recovered struct {
	// Workflow is the id of the recovered workflow.
	Workflow string
	// PreviousOwner is the owner whose lease expired.
	PreviousOwner string
	// Seq is the compensation's position in the workflow.
	Seq int64
	// Confirmed says whether the step it undoes was confirmed.
	Confirmed bool
}

// MaxRecoveredPerCall bounds how many workflows one [Recover] call
// claims, and so the size of its report: with more abandoned workflows
// it stops there and sets RecoveryReport.More; call it again.
const MaxRecoveredPerCall = 1000

// RecoveryReport says what [Recover] did.
type RecoveryReport struct {
	// Workflows lists the workflows Recover claimed, in claim order: at
	// most MaxRecoveredPerCall.
	Workflows []RecoveredWorkflow
	// More says that Recover stopped at MaxRecoveredPerCall: there may be
	// more abandoned workflows.
	More bool
}

// Compensated returns how many compensations ran successfully (had an
// effect to undo) over all workflows.
func (r RecoveryReport) Compensated() int {
	n := 0
	for _, w := range r.Workflows {
		n += len(w.Compensated)
	}
	return n
}

// RecoveredWorkflow is what [Recover] did to one claimed workflow.
type RecoveredWorkflow struct {
	// ID is the workflow's id; PreviousOwner the owner whose lease
	// expired.
	ID, PreviousOwner string
	// Compensated names the compensations that ran and undid an effect,
	// in the order they ran (newest first).
	Compensated []string
	// NoEffect names those that ran and returned ErrNoEffect.
	NoEffect []string
	// Failures lists those that failed after their retries (the workflow
	// is then released for a later Recover, one Lease from now), each
	// with its last error; ErrNotRegistered when the Registry does not
	// know the name.
	Failures []StepError
	// Held names the guards (see [Guard.Before]) that did not run because
	// a compensation of their group failed: they stay in the journal for
	// the recovery that retries it.
	Held []string
	// Finished says that the workflow was removed from the journal:
	// nothing is left to do.
	Finished bool
	// Err is the journal error that stopped the recovery of this
	// workflow (wrapping ErrLeaseLost when another recoverer took it
	// over), nil if none.
	Err error
}

// Recover runs the compensations of abandoned workflows: those in j whose
// owner's lease expired before they ended (the process died, or hung). It
// claims them one at a time ([Journal.Claim]: among recoverers running
// concurrently, in any process, exactly one gets each workflow), runs each
// claimed workflow's remaining compensations newest first with reg's
// handlers, and records each outcome in the journal as it goes, so that a
// recoverer that dies itself leaves only the rest to the next one.
//
// opts give the Config as for [Do]: Attempts, InitialInterval and Timeout
// apply to each compensation as they do in process, OnEvent receives a
// rollback:compensated or rollback:failed event per compensation with a
// [Recovered] Detail, StopOnFailure stops a workflow at its first failure,
// Owner names the recoverer ([NewOwnerID] when empty), Lease is the
// recoverer's lease on a claimed workflow (renewed by each outcome it
// records). Config.Journal and Config.Registry are ignored.
//
// Durable guards ([Guard.Before]) run after the compensations of their
// group, by the rules given there: held (RecoveredWorkflow.Held) when one
// of those failed, dropped when never armed and nothing of their step was
// undone. Recover arms an unarmed guard in the journal before it runs
// the first compensation of its group, so that a recovery stopped in
// between leaves the guard to run at the next one.
//
// Compensations of steps that never confirmed run too: a handler returns
// [ErrNoEffect] when the effect never happened. A compensation that was
// running when its process died runs again (at least once for an
// interrupted handler; exactly once for the others). A workflow with a
// failed compensation is released and claimable again one Lease later,
// so a later Recover retries what failed.
//
// Before each attempt of a compensation or guard (retries included)
// Recover checks that the workflow is still its own with a fenced write
// that renews its lease, and it renews the lease every Lease/3 while one
// runs: a recoverer that is alive keeps its claim however long a
// compensation takes; one whose check fails (ErrLeaseLost: it stalled or
// lost the journal, and another recoverer claimed the workflow; or any
// other journal error: it cannot prove its claim) runs nothing more of
// that workflow and stops it there (RecoveredWorkflow.Err), leaving the
// rest to the recoverer that holds it, as an owner does.
//
// Recover returns when no workflow is left to claim, having claimed each
// at most once, after MaxRecoveredPerCall workflows, or when ctx is done (context.Cause(ctx), with what was
// done so far). It returns an error wrapping ErrInvalid when j or reg is
// nil or opts are invalid, and the journal's error if a claim fails. A
// compensation that panics is recorded as failed, its workflow released,
// and then the panic continues. Recover is safe for concurrent use.
func Recover(ctx context.Context, j Journal, reg *Registry, opts ...Option) (RecoveryReport, error) {
	var rep RecoveryReport
	cfg, err := resolve(opts)
	switch {
	case err != nil:
		return rep, err
	case j == nil:
		return rep, fmt.Errorf("%w Recover journal: nil", ErrInvalid)
	case reg == nil:
		return rep, fmt.Errorf("%w Recover registry: nil", ErrInvalid)
	}
	var c Config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	// A name of its own for this recovery: a recoverer that shared its
	// name with an owner could claim that owner's workflow and leave the
	// owner unfenced.
	owner, lease := c.Owner, c.Lease
	if owner == "" {
		owner = NewOwnerID()
	}
	owner += "/recover-" + rand.Text()[:8]
	if lease == 0 {
		lease = DefaultLease
	}
	// The lease must outlast a compensation: a recoverer renews it only
	// when it records an outcome.
	if cfg.timeout > 0 {
		lease = max(lease, sat.Mul(cfg.timeout, 1.5))
	}
	cfg.durable = &durableConfig{journal: j, registry: reg, owner: owner, lease: lease}
	seen := make(map[string]bool)
	for {
		if ctx.Err() != nil {
			return rep, context.Cause(ctx)
		}
		if len(rep.Workflows) >= MaxRecoveredPerCall {
			rep.More = true
			return rep, nil
		}
		cl, ok, err := j.Claim(ctx, owner, lease)
		if err != nil {
			return rep, fmt.Errorf("%w: claiming: %w", ErrJournal, err)
		}
		if !ok || seen[cl.ID] {
			if ok { // claimed again in this call: leave it for a later one
				_ = j.Release(context.WithoutCancel(ctx), owner, cl.ID, lease)
			}
			return rep, nil
		}
		seen[cl.ID] = true
		rep.Workflows = append(rep.Workflows, recoverOne(ctx, &cfg, cl))
	}
}

// recoverOne runs the compensations of one claimed workflow.
func recoverOne(ctx context.Context, cfg *settings, cl Claimed) (out RecoveredWorkflow) {
	out.ID, out.PreviousOwner = cl.ID, cl.PreviousOwner
	w := &workflow{cfg: cfg.durable, id: cl.ID, begun: true}
	c := &scopeCtx{Context: unscoped{context.WithoutCancel(ctx)}}
	s := &c.scope
	s.ctx, s.cfg = c, *cfg
	var lp callbackPanic
	defer func() {
		left := out.Err == nil && (out.Failures != nil || lp.raised)
		if out.Err == nil {
			var err error
			if left {
				err = cfg.durable.journal.Release(c, w.cfg.owner, w.id, w.cfg.lease)
			} else {
				err = cfg.durable.journal.Finish(c, w.cfg.owner, w.id)
				out.Finished = err == nil
			}
			if err != nil {
				out.Err = fmt.Errorf("%w: ending workflow %s: %w", ErrJournal, w.id, err)
			}
		}
		if lp.raised {
			panic(lp.value)
		}
	}()
	// Guards follow their group, as in process (see Guard.Before).
	groupFailed := false
	armed, guardOf := guardsOf(cl.Entries)
	for i := len(cl.Entries) - 1; i >= 0; i-- {
		if ctx.Err() != nil {
			out.Err = context.Cause(ctx)
			_ = cfg.durable.journal.Release(c, w.cfg.owner, w.id, 0)
			return out
		}
		je := cl.Entries[i]
		name, guard := strings.CutPrefix(je.Name, GuardPrefix)
		if guard {
			failed := groupFailed
			groupFailed = false
			if failed {
				out.Held = append(out.Held, name) // left for the recovery that retries its group
				continue
			}
			if !armed[i] {
				// Never armed, and nothing of its step was undone (running
				// a compensation of its group arms it first, below).
				if serr := w.settle(c, je.Seq, StatusDone); serr != nil {
					out.Err = serr
					return out
				}
				continue
			}
		}
		if gi := guardOf[i]; !guard && gi >= 0 && !armed[gi] {
			// About to undo something of the guard's step: arm it first,
			// in the journal, so that a recovery stopped after this
			// compensation leaves the guard to the next one, which runs
			// it (an armed guard is still held if its group fails).
			ge := cl.Entries[gi]
			if serr := cfg.durable.journal.Confirm(c, w.cfg.owner, w.id, ge.Seq, w.cfg.lease); serr != nil {
				out.Err = fmt.Errorf("%w: arming guard %d of workflow %s: %w", ErrJournal, ge.Seq, w.id, serr)
				return out
			}
			armed[gi] = true
		}
		detail := Recovered{Workflow: cl.ID, PreviousOwner: cl.PreviousOwner, Seq: je.Seq, Confirmed: je.Confirmed}
		h := cfg.durable.registry.lookup(je.Name)
		undo := func(ctx context.Context) error {
			// As an owner does: prove the claim still holds before each
			// attempt, retries included (a recoverer that lost it while
			// backing off must not run the handler again).
			if herr := w.hold(ctx); herr != nil {
				return &handedOver{herr}
			}
			if h == nil {
				return Permanent(fmt.Errorf("%w: %q", ErrNotRegistered, je.Name))
			}
			return h(ctx, je.Args)
		}
		stop := w.keepAlive(c) // keep the claim while the compensation runs
		err := s.runOne(unscoped{c}, entry{name: name, undo: undo}, &lp, detail)
		stop()
		if isHandedOver(err) {
			// The claim is lost or unprovable: the rest is the next
			// recoverer's.
			var h *handedOver
			errors.As(err, &h)
			out.Err = h.err
			return out
		}
		st := StatusDone
		switch {
		case err == nil:
			out.Compensated = append(out.Compensated, name)
		case errors.Is(err, ErrNoEffect):
			out.NoEffect = append(out.NoEffect, name)
		default:
			st = StatusFailed
			groupFailed = true
			out.Failures = append(out.Failures, StepError{Step: name, Err: err})
		}
		if serr := w.settle(c, je.Seq, st); serr != nil {
			out.Err = serr
			return out
		}
		if st == StatusFailed && cfg.stopOnFailure {
			return out
		}
	}
	return out
}

// KeepAlive renews the leases of all the workflows owner holds in j, in
// one [Journal.Renew] call every lease/3, until ctx is done; then it
// returns context.Cause(ctx). Run it in a goroutine of a process whose
// steps may outlast Config.Lease (lease and owner as in its Config). A
// failed renewal is passed to onError (nil: ignored) and tried again at
// the next period. KeepAlive returns an error wrapping ErrInvalid at once
// when j is nil, owner is empty or lease is not positive.
func KeepAlive(ctx context.Context, j Journal, owner string, lease time.Duration, onError func(error)) error {
	switch {
	case j == nil:
		return fmt.Errorf("%w KeepAlive journal: nil", ErrInvalid)
	case owner == "":
		return fmt.Errorf("%w KeepAlive owner: empty", ErrInvalid)
	case lease <= 0:
		return fmt.Errorf("%w KeepAlive lease: %v (must be positive)", ErrInvalid, lease)
	}
	t := time.NewTicker(max(lease/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
		if _, err := j.Renew(ctx, owner, lease); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
	}
}

// guardsOf returns, by index in entries, whether each is a guard armed
// (confirmed) in the journal, and the index of the guard whose group
// holds it (the nearest guard before it; -1 if none).
func guardsOf(entries []Entry) (armed []bool, guardOf []int) {
	armed, guardOf = make([]bool, len(entries)), make([]int, len(entries))
	g := -1
	for i, e := range entries {
		guardOf[i] = g
		if strings.HasPrefix(e.Name, GuardPrefix) {
			armed[i], g = e.Confirmed, i
		}
	}
	return armed, guardOf
}
