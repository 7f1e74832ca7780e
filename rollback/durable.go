package rollback

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// workflow is the journal record of a top-level journaled scope, shared
// by the scopes nested in it.
type workflow struct {
	cfg  *durableConfig
	id   string
	root *Scope // the top-level scope, which ends the workflow
	seq  atomic.Int64

	mu      sync.Mutex // held while the journal's Begin runs
	begun   bool
	ended   bool               // finished or released: nothing more to settle
	byScope map[*Scope][]int64 // unsettled entries, by the scope holding them
	err     error              // the first failed journal write of a compensation
}

// newWorkflow returns the workflow of the new top-level scope root.
func newWorkflow(cfg *durableConfig, root *Scope) *workflow {
	return &workflow{cfg: cfg, id: rand.Text(), root: root}
}

// ownedBy reports whether s is the workflow's top-level scope. It is
// false on a nil workflow.
func (w *workflow) ownedBy(s *Scope) bool { return w != nil && w.root == s }

// ensure writes the workflow's Begin record once, before its first entry.
func (w *workflow) ensure(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.begun {
		return nil
	}
	if err := w.cfg.journal.Begin(ctx, w.id, w.cfg.owner, w.cfg.lease); err != nil {
		return fmt.Errorf("%w: beginning workflow %s: %w", ErrJournal, w.id, err)
	}
	w.begun = true
	return nil
}

// track notes that scope s holds entry seq.
func (w *workflow) track(s *Scope, seq int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byScope == nil {
		w.byScope = make(map[*Scope][]int64)
	}
	w.byScope[s] = append(w.byScope[s], seq)
}

// untrack forgets entry seq of s, which refused it.
func (w *workflow) untrack(s *Scope, seq int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byScope[s] = slices.DeleteFunc(w.byScope[s], func(x int64) bool { return x == seq })
}

// move hands the entries of nested scope s, which committed, to parent.
func (w *workflow) move(s, parent *Scope) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seqs := w.byScope[s]; seqs != nil {
		w.byScope[parent] = append(w.byScope[parent], seqs...)
		delete(w.byScope, s)
	}
}

// take forgets and returns the entries s holds.
func (w *workflow) take(s *Scope) []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	seqs := w.byScope[s]
	delete(w.byScope, s)
	return seqs
}

// firstErr returns the first journal write of a compensation that failed.
func (w *workflow) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// settle records the outcome of entry seq.
func (w *workflow) settle(ctx context.Context, seq int64, st Status) error {
	if err := w.cfg.journal.Settle(ctx, w.cfg.owner, w.id, seq, st, w.cfg.lease); err != nil {
		return fmt.Errorf("%w: settling compensation %d of workflow %s: %w", ErrJournal, seq, w.id, err)
	}
	return nil
}

// settled records that the compensation seq ran, keeping the first error.
func (w *workflow) settled(ctx context.Context, seq int64) {
	w.mu.Lock()
	ended := w.ended
	w.mu.Unlock()
	if ended {
		return // handed to a scope without a journal after the workflow ended
	}
	if err := w.settle(context.WithoutCancel(ctx), seq, StatusDone); err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.err == nil {
			w.err = err
		}
	}
}

// finish ends the workflow in the journal: removed when nothing is left
// to do, released for recovery otherwise.
func (w *workflow) finish(ctx context.Context, leftover bool) error {
	w.mu.Lock()
	begun := w.begun
	w.ended = true
	w.mu.Unlock()
	if !begun {
		return nil
	}
	var err error
	if leftover {
		err = w.cfg.journal.Release(ctx, w.cfg.owner, w.id, 0)
	} else {
		err = w.cfg.journal.Finish(ctx, w.cfg.owner, w.id)
	}
	if err != nil {
		return fmt.Errorf("%w: ending workflow %s: %w", ErrJournal, w.id, err)
	}
	return nil
}

// Pending is a compensation recorded by [Compensation.Before] whose step
// has not been confirmed yet. The zero Pending is valid: its Confirm does
// nothing.
type Pending struct {
	wf  *workflow
	seq int64
}

// Confirm records that the step guarded by the compensation completed.
// It is one journal write; without a journal it does nothing and returns
// nil. An error (wrapping [ErrJournal], and [ErrLeaseLost] when a
// recoverer has taken the workflow over) should fail the call: the scope
// then rolls back, this compensation included. Confirm is safe for
// concurrent use.
func (p Pending) Confirm(ctx context.Context) error {
	w := p.wf
	if w == nil {
		return nil
	}
	if err := w.cfg.journal.Confirm(ctx, w.cfg.owner, w.id, p.seq, w.cfg.lease); err != nil {
		return fmt.Errorf("%w: confirming compensation %d of workflow %s: %w", ErrJournal, p.seq, w.id, err)
	}
	return nil
}

// Before registers the compensation with args, as pending, with the
// rollback scope carried by ctx, before the step it undoes runs. In a
// scope whose Config names a Journal, it first writes the compensation to
// the journal: if the process dies during or after the step, a recoverer
// runs it, whether or not the step took effect (handlers tolerate an
// effect that never happened by returning [ErrNoEffect]). Call
// [Pending.Confirm] once the step completed. Without a journal the
// compensation is kept in memory, as [OnRollback] keeps a closure.
//
// If the scope rolls back, the compensation runs like any other, confirmed
// or not, in reverse order of registration, with fn receiving args (the
// value given here in process; decoded from JSON at recovery).
//
// Before returns an error, and registers nothing, when ctx carries no
// scope ([ErrNoScope]), the scope has ended ([ErrScopeEnded]) or is full
// ([ErrTooManyCompensations]), args cannot be encoded as JSON, the
// compensation is not registered in Config.Registry, or the journal write
// failed ([ErrJournal]). Do not run the step then. Before is safe for
// concurrent use.
func (c Compensation[A]) Before(ctx context.Context, args A) (Pending, error) {
	return c.register(ctx, args, false)
}

// OnRollback registers the compensation with args, confirmed, with the
// rollback scope carried by ctx: call it right after the step it undoes
// completed, when the arguments are only known then (an id the step
// created). With a Journal it is one journal write; a crash between the
// step and that write leaves the step's effect undone, which
// [Compensation.Before] avoids. Errors are those of Before; when one is
// returned, the step's effect has not been registered for undo, so fail
// the call and undo it there.
func (c Compensation[A]) OnRollback(ctx context.Context, args A) error {
	_, err := c.register(ctx, args, true)
	return err
}

func (c Compensation[A]) register(ctx context.Context, args A, confirmed bool) (Pending, error) {
	if c.fn == nil {
		return Pending{}, fmt.Errorf("%w Compensation: zero value (use Register)", ErrInvalid)
	}
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	if s == nil {
		return Pending{}, ErrNoScope
	}
	fn := c.fn
	undo := func(ctx context.Context) error { return fn(ctx, args) }
	w := s.wf
	if w == nil {
		return Pending{}, s.add(entry{name: c.name, undo: undo}, false)
	}
	if !w.cfg.registry.Has(c.name) {
		return Pending{}, fmt.Errorf("%w Compensation %q: not registered in Config.Registry", ErrInvalid, c.name)
	}
	if s.Len() >= int(s.cfg.maxEntries) {
		return Pending{}, ErrTooManyCompensations // before writing anything
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return Pending{}, fmt.Errorf("%w Compensation %q args: %w", ErrInvalid, c.name, err)
	}
	if err := w.ensure(ctx); err != nil {
		return Pending{}, err
	}
	seq := w.seq.Add(1)
	e := Entry{Seq: seq, Name: c.name, Args: raw, Confirmed: confirmed}
	if err := w.cfg.journal.Record(ctx, w.cfg.owner, w.id, e, w.cfg.lease); err != nil {
		return Pending{}, fmt.Errorf("%w: recording compensation %q of workflow %s: %w", ErrJournal, c.name, w.id, err)
	}
	// In process, the journal learns the outcome from the handler: a
	// compensation that ran is settled at once; one that failed, panicked
	// or was skipped stays unsettled, for a recoverer.
	durable := func(ctx context.Context) error {
		err := fn(ctx, args)
		if err == nil || errors.Is(err, ErrNoEffect) {
			w.settled(ctx, seq)
		}
		return err
	}
	w.track(s, seq) // before add: the scope may end as soon as it holds it
	if err := s.add(entry{name: c.name, undo: durable}, false); err != nil {
		w.untrack(s, seq)
		_ = w.settle(context.WithoutCancel(ctx), seq, StatusDiscarded) // best effort: it never runs here
		return Pending{}, err
	}
	if confirmed {
		return Pending{}, nil
	}
	return Pending{wf: w, seq: seq}, nil
}

// NewOwnerID returns a name for this process as a journal owner or
// recoverer: host name, process id and a random suffix, unique among
// processes and restarts. Call it once per process and keep the result.
func NewOwnerID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + rand.Text()[:8]
}
