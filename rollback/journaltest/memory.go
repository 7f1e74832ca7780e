package journaltest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/rollback"
)

// Memory is the in-memory reference [rollback.Journal]: it keeps the
// contract the way a real journal must, in one process, without
// durability. Its clock is time.Now, so tests under testing/synctest see
// leases expire in virtual time. Use it in tests; it is not durable and
// grows with the workflows that are not finished (each holds its
// entries until Finish). The zero Memory is ready to use; it is safe for
// concurrent use.
type Memory struct {
	mu        sync.Mutex
	workflows map[string]*memWorkflow
}

type memWorkflow struct {
	owner   string
	until   time.Time
	entries []rollback.Entry // in Seq order
}

// NewMemory returns an empty Memory journal.
func NewMemory() *Memory { return new(Memory) }

// Len returns how many workflows the journal holds (not finished).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.workflows)
}

func leaseEnd(now time.Time, lease time.Duration) time.Time {
	return now.Add(lease)
}

// Begin implements rollback.Journal.
func (m *Memory) Begin(_ context.Context, id, owner string, lease time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.workflows[id]; ok {
		return fmt.Errorf("%w: workflow %q exists", rollback.ErrInvalid, id)
	}
	if m.workflows == nil {
		m.workflows = make(map[string]*memWorkflow)
	}
	m.workflows[id] = &memWorkflow{owner: owner, until: leaseEnd(time.Now(), lease)}
	return nil
}

// held returns the workflow id if owner holds it, or ErrLeaseLost.
func (m *Memory) held(owner, id string) (*memWorkflow, error) {
	w := m.workflows[id]
	if w == nil || w.owner != owner {
		return nil, fmt.Errorf("%w: workflow %q", rollback.ErrLeaseLost, id)
	}
	return w, nil
}

// Record implements rollback.Journal.
func (m *Memory) Record(_ context.Context, owner, id string, e rollback.Entry, lease time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, err := m.held(owner, id)
	if err != nil {
		return err
	}
	i, found := slices.BinarySearchFunc(w.entries, e.Seq, func(x rollback.Entry, s int64) int { return cmpInt(x.Seq, s) })
	if found {
		return fmt.Errorf("%w: workflow %q already has entry %d", rollback.ErrInvalid, id, e.Seq)
	}
	e.Args = slices.Clone(e.Args)
	e.Status = rollback.StatusPending
	w.entries = slices.Insert(w.entries, i, e)
	w.until = leaseEnd(time.Now(), lease)
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *Memory) entry(owner, id string, seq int64, lease time.Duration) (*rollback.Entry, error) {
	w, err := m.held(owner, id)
	if err != nil {
		return nil, err
	}
	i, found := slices.BinarySearchFunc(w.entries, seq, func(x rollback.Entry, s int64) int { return cmpInt(x.Seq, s) })
	if !found {
		return nil, fmt.Errorf("%w: workflow %q has no entry %d", rollback.ErrInvalid, id, seq)
	}
	w.until = leaseEnd(time.Now(), lease)
	return &w.entries[i], nil
}

// Confirm implements rollback.Journal.
func (m *Memory) Confirm(_ context.Context, owner, id string, seq int64, lease time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.entry(owner, id, seq, lease)
	if err != nil {
		return err
	}
	e.Confirmed = true
	return nil
}

// Settle implements rollback.Journal.
func (m *Memory) Settle(_ context.Context, owner, id string, seq int64, st rollback.Status, lease time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.entry(owner, id, seq, lease)
	if err != nil {
		return err
	}
	e.Status = st
	return nil
}

// Finish implements rollback.Journal.
func (m *Memory) Finish(_ context.Context, owner, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.held(owner, id); err != nil {
		return err
	}
	delete(m.workflows, id)
	return nil
}

// Release implements rollback.Journal.
func (m *Memory) Release(_ context.Context, owner, id string, after time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, err := m.held(owner, id)
	if err != nil {
		return err
	}
	w.until = leaseEnd(time.Now(), max(after, 0))
	return nil
}

// Renew implements rollback.Journal.
func (m *Memory) Renew(_ context.Context, owner string, lease time.Duration) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now, n := time.Now(), 0
	for _, w := range m.workflows {
		if w.owner == owner && w.until.After(now) {
			w.until = leaseEnd(now, lease)
			n++
		}
	}
	return n, nil
}

// Claim implements rollback.Journal. It hands out the abandoned workflow
// whose lease expired first.
func (m *Memory) Claim(_ context.Context, recoverer string, lease time.Duration) (rollback.Claimed, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var (
		best   *memWorkflow
		bestID string
	)
	for id, w := range m.workflows {
		if !w.until.After(now) && (best == nil || w.until.Before(best.until) || (w.until.Equal(best.until) && id < bestID)) {
			best, bestID = w, id
		}
	}
	if best == nil {
		return rollback.Claimed{}, false, nil
	}
	c := rollback.Claimed{ID: bestID, PreviousOwner: best.owner}
	for _, e := range best.entries {
		if e.Status == rollback.StatusPending || e.Status == rollback.StatusFailed {
			e.Args = slices.Clone(e.Args)
			c.Entries = append(c.Entries, e)
		}
	}
	best.owner, best.until = recoverer, leaseEnd(now, lease)
	return c, true, nil
}
