package rollback_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
)

// guardFixture is a fixture with a durable guard "forget" that records
// the keys it was run with.
type guardFixture struct {
	*fixture
	mu      sync.Mutex
	forgot  []string
	failing int // the next runs that fail
	forget  rollback.Guard[string]
}

func newGuardFixture(t *testing.T) *guardFixture {
	g := &guardFixture{fixture: newFixture(t)}
	var err error
	g.forget, err = rollback.RegisterGuard(g.reg, "forget", g.run)
	require.NoError(t, err)
	return g
}

func (g *guardFixture) run(_ context.Context, key string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failing > 0 {
		g.failing--
		return rollback.Permanent(errors.New("store: 503"))
	}
	g.forgot = append(g.forgot, key)
	return rollback.ErrNoEffect
}

func (g *guardFixture) forgotten() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.forgot...)
}

// guarded runs a step charging id behind the guard for key, and arms the
// guard when arm says so.
func (g *guardFixture) guarded(t *testing.T, ctx context.Context, key, id string, arm bool) rollback.Pending {
	p, err := g.forget.Before(ctx, key)
	require.NoError(t, err)
	require.NoError(t, g.step(ctx, id))
	if arm {
		require.NoError(t, p.Confirm(ctx))
	}
	return p
}

// abandon runs steps in a journaled scope whose process then "dies" (the
// scope never ends), and lets its lease expire.
func (g *guardFixture) abandon(t *testing.T, steps func(ctx context.Context)) {
	ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(g.cfg))
	require.NoError(t, err)
	steps(ctx)
	time.Sleep(11 * time.Second)
}

func (g *guardFixture) recoverOne(t *testing.T, reg *rollback.Registry) rollback.RecoveredWorkflow {
	rep, err := rollback.Recover(t.Context(), g.j, reg, g.recoverer(func(c *rollback.Config) { c.Lease = time.Minute })...)
	require.NoError(t, err)
	require.Len(t, rep.Workflows, 1)
	return rep.Workflows[0]
}

// At recovery a durable guard runs after the compensations of its group,
// as it does in process, and only when they succeeded; guards split the
// workflow's entries into groups.
func TestDurableGuardRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.abandon(t, func(ctx context.Context) {
			g.guarded(t, ctx, "k1", "c1", true)
			g.guarded(t, ctx, "k2", "c2", true)
		})
		w := g.recoverOne(t, g.reg)
		assert.Equal(t, []string{"refund", "refund"}, w.Compensated)
		assert.Equal(t, []string{"forget", "forget"}, w.NoEffect)
		assert.True(t, w.Finished)
		assert.Equal(t, []string{"k2", "k1"}, g.forgotten())
		charges, _ := g.l.state()
		assert.Empty(t, charges)
	})
}

// A guard whose group's compensation failed at recovery does not run; it
// stays in the journal (Held) and runs at the recovery that undoes the
// step. The other groups are not held back.
func TestDurableGuardHeldByFailedCompensation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.abandon(t, func(ctx context.Context) {
			g.guarded(t, ctx, "k1", "c1", true)
			g.guarded(t, ctx, "k2", "c2", true)
		})
		g.l.failures = 3 // c2's refund, all its attempts
		w := g.recoverOne(t, g.reg)
		require.Len(t, w.Failures, 1)
		assert.Equal(t, []string{"forget"}, w.Held)
		assert.False(t, w.Finished)
		assert.Equal(t, []string{"k1"}, g.forgotten(), "k2's step still has its effect: k2 is kept")

		time.Sleep(time.Minute)
		w = g.recoverOne(t, g.reg)
		assert.Equal(t, []string{"refund"}, w.Compensated)
		assert.Empty(t, w.Held)
		assert.True(t, w.Finished)
		assert.Equal(t, []string{"k1", "k2"}, g.forgotten())
	})
}

// In process, a guard whose group failed does not run either; it is left
// in the journal with the failed compensation, and a recoverer that
// undoes the step then runs it.
func TestDurableGuardHeldInProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.l.failures = 3
		boom := errors.New("boom")
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			g.guarded(t, ctx, "k1", "c1", true)
			return 0, boom
		}, rollback.WithConfig(g.cfg))
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		assert.Empty(t, g.forgotten())
		assert.Equal(t, 1, g.j.Len(), "left for a recoverer")

		w := g.recoverOne(t, g.reg)
		assert.Equal(t, []string{"refund"}, w.Compensated)
		assert.True(t, w.Finished)
		assert.Equal(t, []string{"k1"}, g.forgotten())
	})
}

// In process, an armed guard whose group succeeded runs and is settled;
// an unarmed one does not run. Nothing is left in the journal.
func TestDurableGuardInProcess(t *testing.T) {
	g := newGuardFixture(t)
	boom := errors.New("boom")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		g.guarded(t, ctx, "k1", "c1", true)
		g.guarded(t, ctx, "k2", "c2", false)
		return 0, boom
	}, rollback.WithConfig(g.cfg))
	require.ErrorIs(t, err, boom)
	assert.Equal(t, []string{"k1"}, g.forgotten())
	assert.Equal(t, 0, g.j.Len())
}

// An unarmed guard (its process died during its step or before Confirm)
// runs at recovery only when a compensation of its group ran: something
// of its step was undone. Otherwise it is dropped.
func TestDurableGuardUnarmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.abandon(t, func(ctx context.Context) {
			g.guarded(t, ctx, "k1", "c1", false) // died before arming
			_, err := g.forget.Before(ctx, "k2") // died before its step did anything
			require.NoError(t, err)
		})
		w := g.recoverOne(t, g.reg)
		assert.Equal(t, []string{"refund"}, w.Compensated)
		assert.Equal(t, []string{"forget"}, w.NoEffect)
		assert.True(t, w.Finished)
		assert.Equal(t, []string{"k1"}, g.forgotten())
	})
}

// An unarmed guard that the recovery decided to run, and that failed, is
// armed in the journal: the next recovery runs it, although its group
// has nothing left to run.
func TestDurableGuardUnarmedFailureArmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.abandon(t, func(ctx context.Context) { g.guarded(t, ctx, "k1", "c1", false) })
		g.failing = 1
		w := g.recoverOne(t, g.reg)
		require.Len(t, w.Failures, 1)
		assert.Equal(t, "forget", w.Failures[0].Step)
		assert.Empty(t, g.forgotten())

		time.Sleep(time.Minute)
		w = g.recoverOne(t, g.reg)
		assert.Equal(t, []string{"forget"}, w.NoEffect)
		assert.Equal(t, []string{"k1"}, g.forgotten())
	})
}

// A discarded guard never runs, in process or at recovery.
func TestDurableGuardDiscarded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.abandon(t, func(ctx context.Context) {
			p := g.guarded(t, ctx, "k1", "c1", true)
			require.NoError(t, p.Discard(ctx))
			require.NoError(t, p.Discard(ctx), "twice: a no-op")
		})
		w := g.recoverOne(t, g.reg)
		assert.Equal(t, []string{"refund"}, w.Compensated)
		assert.Empty(t, g.forgotten())

		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			p := g.guarded(t, ctx, "k2", "c2", true)
			return 0, p.Discard(ctx)
		}, rollback.WithConfig(g.cfg))
		require.NoError(t, err)
		_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			p := g.guarded(t, ctx, "k3", "c3", true)
			require.NoError(t, p.Discard(ctx))
			return 0, errors.New("boom")
		}, rollback.WithConfig(g.cfg))
		require.Error(t, err)
		assert.Empty(t, g.forgotten())
		assert.Equal(t, 0, g.j.Len())
	})
}

// A guard whose group holds a closure (lost with the process: the step's
// effect may still exist) never runs at recovery, whether the closure
// was registered in the guard's scope or handed over by a nested scope;
// it still runs in process, where the closure ran.
func TestDurableGuardTaintedByClosure(t *testing.T) {
	closure := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name string
		add  func(t *testing.T, ctx context.Context)
	}{
		{"same scope", func(t *testing.T, ctx context.Context) {
			require.NoError(t, rollback.OnRollback(ctx, "local undo", closure))
		}},
		{"nested scope", func(t *testing.T, ctx context.Context) {
			_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
				return 0, rollback.OnRollback(ctx, "local undo", closure)
			})
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newGuardFixture(t)
				g.abandon(t, func(ctx context.Context) {
					g.guarded(t, ctx, "k1", "c1", true)
					g.guarded(t, ctx, "k2", "c2", true)
					tc.add(t, ctx)
				})
				w := g.recoverOne(t, g.reg)
				assert.Equal(t, []string{"refund", "refund"}, w.Compensated)
				assert.Equal(t, []string{"k1"}, g.forgotten(), "k2's group lost its closure")

				_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
					g.guarded(t, ctx, "k3", "c3", true)
					tc.add(t, ctx)
					return 0, errors.New("boom")
				}, rollback.WithConfig(g.cfg))
				require.Error(t, err)
				assert.Equal(t, []string{"k1", "k3"}, g.forgotten(), "in process the closure ran")
			})
		})
	}
}

// A recoverer whose Registry lacks the guard records it as failed with
// ErrNotRegistered and releases the workflow; one with it runs the guard.
func TestDurableGuardNotRegistered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.abandon(t, func(ctx context.Context) { g.guarded(t, ctx, "k1", "c1", true) })
		partial := rollback.NewRegistry()
		_, err := rollback.Register(partial, "refund", g.l.refund)
		require.NoError(t, err)
		w := g.recoverOne(t, partial)
		assert.Equal(t, []string{"refund"}, w.Compensated)
		require.Len(t, w.Failures, 1)
		assert.Equal(t, "forget", w.Failures[0].Step)
		assert.ErrorIs(t, w.Failures[0].Err, rollback.ErrNotRegistered)
		assert.False(t, w.Finished)

		time.Sleep(time.Minute)
		w = g.recoverOne(t, g.reg)
		assert.Equal(t, []string{"forget"}, w.NoEffect)
		assert.True(t, w.Finished)
		assert.Equal(t, []string{"k1"}, g.forgotten())
	})
}

// Without a journal a guard lives in memory, with the same rules.
func TestGuardWithoutJournal(t *testing.T) {
	g := newGuardFixture(t)
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		assert.False(t, rollback.Journaled(ctx))
		g.guarded(t, ctx, "k1", "c1", true)
		g.guarded(t, ctx, "k2", "c2", false)
		p := g.guarded(t, ctx, "k3", "c3", true)
		require.NoError(t, p.Discard(ctx))
		return 0, errors.New("boom")
	})
	require.Error(t, err)
	assert.Equal(t, []string{"k1"}, g.forgotten())
}

// A compensation discarded before its scope ends never runs.
func TestDurablePendingDiscard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.abandon(t, func(ctx context.Context) {
			assert.True(t, rollback.Journaled(ctx))
			p, err := g.refund.Before(ctx, refundArgs{Charge: "c1"})
			require.NoError(t, err)
			require.NoError(t, p.Discard(ctx)) // the step failed before charging
		})
		w := g.recoverOne(t, g.reg)
		assert.Empty(t, w.Compensated)
		assert.Empty(t, w.NoEffect)
		_, refunds := g.l.state()
		assert.Empty(t, refunds)

		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			p, err := g.refund.Before(ctx, refundArgs{Charge: "c2"})
			require.NoError(t, err)
			require.NoError(t, p.Discard(ctx))
			return 0, errors.New("boom")
		}, rollback.WithConfig(g.cfg))
		require.Error(t, err)
		_, refunds = g.l.state()
		assert.Empty(t, refunds)
		assert.NoError(t, rollback.Pending{}.Discard(t.Context()), "the zero Pending")
	})
}

func TestGuardInvalid(t *testing.T) {
	reg := rollback.NewRegistry()
	fn := func(context.Context, string) error { return nil }
	_, err := rollback.RegisterGuard(nil, "g", fn)
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	_, err = rollback.RegisterGuard(reg, "", fn)
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	_, err = rollback.RegisterGuard[string](reg, "g", nil)
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	gd, err := rollback.RegisterGuard(reg, "g", fn)
	require.NoError(t, err)
	assert.Equal(t, "g", gd.Name())
	assert.True(t, reg.Has(rollback.GuardPrefix+"g"))
	assert.False(t, reg.Has("g"), "guards and compensations have separate names")
	_, err = rollback.RegisterGuard(reg, "g", fn)
	assert.ErrorIs(t, err, rollback.ErrInvalid, "duplicate")
	_, err = rollback.Register(reg, "g", fn)
	assert.NoError(t, err, "a compensation may share a guard's name")
	_, err = rollback.Register(reg, rollback.GuardPrefix+"x", fn)
	assert.ErrorIs(t, err, rollback.ErrInvalid, "reserved prefix")

	_, err = rollback.Guard[string]{}.Before(t.Context(), "k")
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	_, err = gd.Before(t.Context(), "k")
	assert.ErrorIs(t, err, rollback.ErrNoScope)
	assert.False(t, rollback.Journaled(t.Context()))

	// A journaled scope refuses a guard its Registry does not know.
	f := newFixture(t)
	_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_, err := gd.Before(ctx, "k")
		return 0, err
	}, rollback.WithConfig(f.cfg))
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	assert.Equal(t, 0, f.j.Len())
}

// A guard registered inside the Do of a saga step with a Compensation
// follows that Compensation, as it follows a step's Undo: the
// Compensation is registered again after Do, so that it runs first and
// the guard learns whether it failed, in process and at recovery.
func TestDurableGuardInSagaStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		saga, err := rollback.NewSaga([]rollback.Step[chargeTrip]{
			{Name: "flight",
				Do: func(ctx context.Context, s *chargeTrip) error {
					g.guarded(t, ctx, "k-flight", "unrelated", true) // its own charge is undone in its group
					g.l.charge(s.Flight)
					return nil
				},
				Compensation: rollback.UndoWith(g.refund, func(s *chargeTrip) refundArgs { return refundArgs{Charge: s.Flight} })},
			{Name: "hotel", Do: func(context.Context, *chargeTrip) error { return errors.New("full") }},
		}, rollback.WithConfig(g.cfg))
		require.NoError(t, err)

		g.l.failures = 3 // the flight's refund fails in process
		require.Error(t, saga.Run(t.Context(), &chargeTrip{Flight: "f-1"}))
		assert.Empty(t, g.forgotten(), "the flight's refund failed: its key is kept")
		charges, _ := g.l.state()
		assert.Equal(t, []string{"f-1"}, charges)

		w := g.recoverOne(t, g.reg)
		assert.Equal(t, []string{"refund"}, w.Compensated)
		assert.True(t, w.Finished)
		assert.Equal(t, []string{"k-flight"}, g.forgotten(), "refunded at recovery: forgotten")
		charges, _ = g.l.state()
		assert.Empty(t, charges)
	})
}

// An unarmed guard whose group's compensation ran in a recovery that was
// then stopped (its context cancelled before it reached the guard) runs
// at the next recovery: the first armed it before running the
// compensation. Before the fix the next recovery found the compensation
// settled, nothing of the group run "in this recovery", and dropped the
// guard: the charge was refunded but its key never forgotten.
func TestDurableGuardUnarmedInterruptedRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.abandon(t, func(ctx context.Context) { g.guarded(t, ctx, "k1", "c1", false) }) // died before arming

		rctx, stop := context.WithCancel(t.Context())
		defer stop()
		reg := rollback.NewRegistry()
		_, err := rollback.Register(reg, "refund", func(ctx context.Context, a refundArgs) error {
			stop() // the recoverer is shut down while the refund runs
			return g.l.refund(ctx, a)
		})
		require.NoError(t, err)
		_, err = rollback.RegisterGuard(reg, "forget", g.run)
		require.NoError(t, err)
		rep, err := rollback.Recover(rctx, g.j, reg, g.recoverer()...)
		require.ErrorIs(t, err, context.Canceled)
		require.Len(t, rep.Workflows, 1)
		assert.Equal(t, []string{"refund"}, rep.Workflows[0].Compensated)
		assert.ErrorIs(t, rep.Workflows[0].Err, context.Canceled)
		assert.Empty(t, g.forgotten(), "stopped before the guard")

		w := g.recoverOne(t, g.reg)
		assert.Empty(t, w.Compensated)
		assert.Equal(t, []string{"forget"}, w.NoEffect)
		assert.True(t, w.Finished)
		assert.Equal(t, []string{"k1"}, g.forgotten())
		charges, refunds := g.l.state()
		assert.Empty(t, charges)
		assert.Equal(t, []string{"c1"}, refunds, "refunded once")
		assert.Equal(t, 0, g.j.Len())
	})
}

// An armed guard runs at recovery although its group has nothing left
// to run: arming says its step registered a compensation, here settled
// by a recovery that died right after it (the journal as that recovery
// left it: the compensation done, the guard armed before it ran).
func TestDurableGuardArmedEmptyGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGuardFixture(t)
		g.abandon(t, func(ctx context.Context) {
			g.guarded(t, ctx, "k1", "c1", true)
			_, err := g.forget.Before(ctx, "k2") // unarmed, empty group: dropped
			require.NoError(t, err)
		})
		cl, ok, err := g.j.Claim(t.Context(), "dead-recoverer", time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		require.Len(t, cl.Entries, 3)
		require.NoError(t, g.j.Settle(t.Context(), "dead-recoverer", cl.ID, cl.Entries[1].Seq, rollback.StatusDone, time.Second))
		time.Sleep(2 * time.Second) // the recoverer died

		w := g.recoverOne(t, g.reg)
		assert.Empty(t, w.Compensated)
		assert.Equal(t, []string{"forget"}, w.NoEffect)
		assert.True(t, w.Finished)
		assert.Equal(t, []string{"k1"}, g.forgotten())
		assert.Equal(t, 0, g.j.Len())
	})
}
