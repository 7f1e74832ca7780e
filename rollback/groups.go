package rollback

import (
	"context"
	"sync/atomic"
)

// pendingState is the in-memory state of a registration made by
// [Compensation.Before] or [Guard.Before], shared by its [Pending] and its
// scope entry.
type pendingState struct {
	armed   atomic.Bool // Confirm was called: the step completed
	dropped atomic.Bool // Discard was called: the registration never runs
	tainted atomic.Bool // a guard whose group holds a closure (see taint)
	wf      *workflow   // nil without a journal
	seq     int64
}

// addKind says what a registration adds to a scope's groups (see
// groupInfo).
type addKind uint8

const (
	kindClosure   addKind = iota // an in-memory compensation: lost with its process
	kindJournaled                // a journaled compensation
	kindGuard                    // a guard: starts a group (durable when its state is journaled)
)

// groupInfo follows, for one scope of a journaled workflow, the group its
// next registration joins: the entries after a guard and before the next
// one (see [OnRollbackGuard]). A durable guard decides at recovery from
// the journaled entries of its group alone; a closure of its group is
// lost with the process, so its effect may still exist after a recovery,
// and the guard must not run then: it is tainted (settled discarded).
type groupInfo struct {
	head    *pendingState // the durable guard of the current group; nil if none or not durable
	headSet bool          // the scope has registered a guard: head says which group is current
	loose   bool          // a closure was registered before any guard: it joins the enclosing scope's current group
}

// noteAdd records that s registered an entry of kind k (g: a durable
// guard's state) and returns the guard it taints, if any.
func (w *workflow) noteAdd(s *Scope, k addKind, g *pendingState) *pendingState {
	if k == kindJournaled {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	gi := w.groups[s]
	if gi == nil {
		if w.groups == nil {
			w.groups = make(map[*Scope]*groupInfo)
		}
		gi = new(groupInfo)
		w.groups[s] = gi
	}
	if k == kindGuard {
		gi.head, gi.headSet = g, true
		return nil
	}
	if !gi.headSet {
		gi.loose = true
		return nil
	}
	return gi.head
}

// noteMove records that nested scope s committed and handed its entries
// to parent, and returns the guard of parent this taints, if any.
func (w *workflow) noteMove(s, parent *Scope) *pendingState {
	w.mu.Lock()
	defer w.mu.Unlock()
	ci := w.groups[s]
	if ci == nil {
		return nil
	}
	delete(w.groups, s)
	pi := w.groups[parent]
	if pi == nil {
		pi = new(groupInfo)
		w.groups[parent] = pi
	}
	var t *pendingState
	if ci.loose {
		if pi.headSet {
			t = pi.head
		} else {
			pi.loose = true
		}
	}
	if ci.headSet {
		pi.head, pi.headSet = ci.head, true
	}
	return t
}

// dropGroups forgets the groups of s, which ended or discarded its
// entries.
func (w *workflow) dropGroups(s *Scope) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.groups, s)
}

// taint settles the durable guard g discarded, once: its group holds a
// closure, so a recoverer must not run it. A failed write is kept as the
// workflow's first journal error, reported when it ends.
func (w *workflow) taint(ctx context.Context, g *pendingState) {
	if g == nil || !g.tainted.CompareAndSwap(false, true) {
		return
	}
	w.settledAs(ctx, g.seq, StatusDiscarded)
}
