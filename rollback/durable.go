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
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	groups  map[*Scope]*groupInfo
	err     error // the first failed journal write of a compensation
	lost    error // the first failed lease check (see hold): the journaled compensations are the recoverer's
	left    bool  // a rollback left compensations in the journal (failed, skipped or handed over)
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

// hold checks, right before a journaled compensation of the workflow
// runs in process, that the workflow is still its owner's, and extends
// its lease: one fenced write ([Journal.Release] with the lease, which
// keeps the owner). It returns nil when the workflow has no journal
// record (never begun, or ended and handed to a scope without a journal:
// the compensation is then in memory only). Once a check failed, every
// later one fails with the same error, without a write: the lease was
// lost (a recoverer claimed the workflow) or could not be proved, and
// the journaled compensations left are the recoverer's, which runs each
// of them once. The error wraps ErrJournal, and ErrLeaseLost when a
// recoverer took the workflow over; it is kept as the workflow's first
// journal error.
func (w *workflow) hold(ctx context.Context) error {
	w.mu.Lock()
	lost, live := w.lost, w.begun && !w.ended
	w.mu.Unlock()
	if lost != nil || !live {
		return lost
	}
	if err := w.cfg.journal.Release(ctx, w.cfg.owner, w.id, w.cfg.lease); err != nil {
		return w.lose(fmt.Errorf("%w: renewing the lease of workflow %s before a compensation: %w", ErrJournal, w.id, err))
	}
	return nil
}

// lose records err as the failed lease check that hands the workflow's
// journaled compensations to a recoverer, and returns the first such
// error.
func (w *workflow) lose(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lost == nil {
		w.lost = err
	}
	if w.err == nil {
		w.err = err
	}
	return w.lost
}

// lostErr returns the failed lease check that handed the workflow's
// journaled compensations to a recoverer, nil if none.
func (w *workflow) lostErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost
}

// leftAny reports whether a rollback of a scope of the workflow left
// compensations in the journal.
func (w *workflow) leftAny() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.left
}

// leave notes that a rollback left compensations in the journal, so
// that the rollback of the top-level scope releases the workflow to a
// recoverer instead of removing it.
func (w *workflow) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.left = true
}

// keepAlive renews the workflow's lease every lease/3 while a
// compensation runs in process, so that an owner that is alive keeps its
// workflow however long a compensation takes: only an owner that stalls
// (a pause, a partition from the journal) loses it. It renews with the
// fenced write of hold; a renewal that finds the lease lost ends the
// renewals and makes the next check fail, one that fails otherwise is
// tried again at the next period. stop ends the renewals and waits for
// the goroutine to return. Without a journal record it starts nothing.
func (w *workflow) keepAlive(ctx context.Context) (stop func()) {
	w.mu.Lock()
	live := w.begun && !w.ended && w.lost == nil
	w.mu.Unlock()
	if !live {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(w.cfg.lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := w.cfg.journal.Release(ctx, w.cfg.owner, w.id, w.cfg.lease)
			if errors.Is(err, ErrLeaseLost) {
				w.lose(fmt.Errorf("%w: renewing the lease of workflow %s during a compensation: %w", ErrJournal, w.id, err))
				return
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// handedOver is the error of a journaled compensation that did not run in
// process because the lease check before it failed (see hold): it is the
// recoverer's. It is neither retried nor reported as a failure.
type handedOver struct{ err error }

func (h *handedOver) Error() string { return h.err.Error() }
func (h *handedOver) Unwrap() error { return h.err }

// isHandedOver reports whether err is a handedOver.
func isHandedOver(err error) bool {
	if err == nil {
		return false
	}
	var h *handedOver
	return errors.As(err, &h)
}

// settle records the outcome of entry seq.
func (w *workflow) settle(ctx context.Context, seq int64, st Status) error {
	if err := w.cfg.journal.Settle(ctx, w.cfg.owner, w.id, seq, st, w.cfg.lease); err != nil {
		return fmt.Errorf("%w: settling compensation %d of workflow %s: %w", ErrJournal, seq, w.id, err)
	}
	return nil
}

// settled records that the compensation seq ran, keeping the first error.
func (w *workflow) settled(ctx context.Context, seq int64) { w.settledAs(ctx, seq, StatusDone) }

// settledAs records the outcome st of entry seq, keeping the first error.
func (w *workflow) settledAs(ctx context.Context, seq int64, st Status) {
	w.mu.Lock()
	ended := w.ended
	w.mu.Unlock()
	if ended {
		return // handed to a scope without a journal after the workflow ended
	}
	if err := w.settle(context.WithoutCancel(ctx), seq, st); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			w.lose(err) // a recoverer owns the rest
			return
		}
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
	begun, ended := w.begun, w.ended
	w.ended = true
	w.mu.Unlock()
	if !begun || ended {
		return nil // ended already: a Commit that found the lease lost rolls back
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

// Pending is a registration made by [Compensation.Before] or
// [Guard.Before] before its step runs: end it with [Pending.Confirm] once
// the step completed, or [Pending.Discard] when nothing is left to undo.
// The zero Pending is valid: its methods do nothing.
type Pending struct {
	wf  *workflow
	seq int64
	st  *pendingState
}

// Confirm records that the step guarded by the registration completed:
// for a compensation, that its effect may exist; for a [Guard], that the
// guard is armed (see [Guard.Before]). With a journal it is one journal
// write (none for a guard already dropped from the journal because its
// group holds a closure); without one it only arms a guard and returns
// nil. An error
// (wrapping [ErrJournal], and [ErrLeaseLost] when a recoverer has taken
// the workflow over) should fail the call: the scope then rolls back,
// this registration included (an armed guard still runs in process).
// Confirm is safe for concurrent use.
func (p Pending) Confirm(ctx context.Context) error {
	if p.st != nil {
		p.st.armed.Store(true)
	}
	w := p.wf
	if w == nil || p.st != nil && p.st.tainted.Load() {
		return nil // nothing to journal: a tainted guard is settled discarded
	}
	if err := w.cfg.journal.Confirm(ctx, w.cfg.owner, w.id, p.seq, w.cfg.lease); err != nil {
		return fmt.Errorf("%w: confirming compensation %d of workflow %s: %w", ErrJournal, p.seq, w.id, err)
	}
	return nil
}

// Discard drops the registration: its step failed before it took effect,
// or (for a [Guard]) there is nothing the guard should follow, so that it
// never runs, in process or at recovery. It wins over an earlier or later
// Confirm. With a journal it is one journal write (the entry is settled
// discarded), made at most once; an error wraps [ErrJournal] (and
// [ErrLeaseLost] when a recoverer has taken the workflow over): a
// recoverer may then still see the registration. Discard is safe for
// concurrent use.
func (p Pending) Discard(ctx context.Context) error {
	if p.st == nil || !p.st.dropped.CompareAndSwap(false, true) || p.wf == nil || p.st.tainted.Load() {
		return nil
	}
	return p.wf.settle(ctx, p.seq, StatusDiscarded)
}

// Before registers the compensation with args, as pending, with the
// rollback scope carried by ctx, before the step it undoes runs. In a
// scope whose Config names a Journal, it first writes the compensation to
// the journal: if the process dies during or after the step, a recoverer
// runs it, whether or not the step took effect (handlers tolerate an
// effect that never happened by returning [ErrNoEffect]). Call
// [Pending.Confirm] once the step completed, or [Pending.Discard] if it
// failed without any effect. Without a journal the compensation is kept
// in memory, as [OnRollback] keeps a closure.
//
// If the scope rolls back, the compensation runs like any other, confirmed
// or not (unless discarded), in reverse order of registration, with fn
// receiving args (the value given here in process; decoded from JSON at
// recovery).
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
	fn := c.fn
	var st *pendingState
	if !confirmed {
		st = new(pendingState)
	}
	r := registration{name: c.name, key: c.name, what: "Compensation", args: args, st: st, kind: kindJournaled,
		entry: func(w *workflow, seq int64) entry {
			return entry{name: c.name, undo: func(ctx context.Context) error {
				if st != nil && st.dropped.Load() {
					return ErrNoEffect // settled discarded by Discard
				}
				if w != nil {
					if err := w.hold(ctx); err != nil {
						return &handedOver{err} // the recoverer's now
					}
				}
				// In process, the journal learns the outcome from the
				// handler: a compensation that ran is settled at once; one
				// that failed, panicked or was skipped stays unsettled,
				// for a recoverer.
				err := fn(ctx, args)
				if w != nil && (err == nil || errors.Is(err, ErrNoEffect)) {
					w.settled(ctx, seq)
				}
				return err
			}}
		}}
	return r.register(ctx, confirmed)
}

// registration is one registration of a registered handler (a
// compensation or a guard) with a scope, journaled when the scope's
// workflow has a journal.
type registration struct {
	name  string // in events and errors
	key   string // in the Registry and the journal
	what  string // "Compensation" or "Guard", in errors
	args  any
	st    *pendingState // nil for a confirmed registration
	kind  addKind
	entry func(w *workflow, seq int64) entry // w nil without a journal
}

func (r *registration) register(ctx context.Context, confirmed bool) (Pending, error) {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	if s == nil {
		return Pending{}, ErrNoScope
	}
	w := s.wf
	if w == nil {
		if err := s.add(r.entry(nil, 0), false, r.kind, nil); err != nil {
			return Pending{}, err
		}
		return Pending{st: r.st}, nil
	}
	if !w.cfg.registry.Has(r.key) {
		return Pending{}, fmt.Errorf("%w %s %q: not registered in Config.Registry", ErrInvalid, r.what, r.name)
	}
	if s.Len() >= int(s.cfg.maxEntries) {
		return Pending{}, ErrTooManyCompensations // before writing anything
	}
	raw, err := json.Marshal(r.args)
	if err != nil {
		return Pending{}, fmt.Errorf("%w %s %q args: %w", ErrInvalid, r.what, r.name, err)
	}
	if err := w.ensure(ctx); err != nil {
		return Pending{}, err
	}
	seq := w.seq.Add(1)
	e := Entry{Seq: seq, Name: r.key, Args: raw, Confirmed: confirmed}
	if err := w.cfg.journal.Record(ctx, w.cfg.owner, w.id, e, w.cfg.lease); err != nil {
		return Pending{}, fmt.Errorf("%w: recording %s %q of workflow %s: %w", ErrJournal, strings.ToLower(r.what), r.name, w.id, err)
	}
	var g *pendingState
	if r.st != nil {
		r.st.wf, r.st.seq = w, seq
		if r.kind == kindGuard {
			g = r.st
		}
	}
	w.track(s, seq) // before add: the scope may end as soon as it holds it
	if err := s.add(r.entry(w, seq), false, r.kind, g); err != nil {
		w.untrack(s, seq)
		_ = w.settle(context.WithoutCancel(ctx), seq, StatusDiscarded) // best effort: it never runs here
		return Pending{}, err
	}
	if confirmed {
		return Pending{}, nil
	}
	return Pending{wf: w, seq: seq, st: r.st}, nil
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
