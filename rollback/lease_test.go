package rollback_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
)

// refunds counts the runs of a refund handler per charge, outside
// bulwark; slow lists the charges whose first refund hangs until its
// context is done (hang) or takes the given time.
type refunds struct {
	mu   sync.Mutex
	runs map[string]int
	slow map[string]time.Duration // <0: hangs until its context is done
}

func newRefunds(slow map[string]time.Duration) *refunds {
	return &refunds{runs: map[string]int{}, slow: slow}
}

func (r *refunds) refund(ctx context.Context, charge string) error {
	r.mu.Lock()
	r.runs[charge]++
	first := r.runs[charge] == 1
	d, slow := r.slow[charge]
	r.mu.Unlock()
	switch {
	case slow && first && d < 0:
		<-ctx.Done() // the payments API hangs; the handler honours its context
		return ctx.Err()
	case slow && first:
		time.Sleep(d)
	default:
		time.Sleep(time.Second) // a normal refund
	}
	return nil
}

func (r *refunds) count() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.runs))
	for k, v := range r.runs {
		out[k] = v
	}
	return out
}

// With the defaults (Lease 30s, Timeout 30s), a refund that hangs until
// its Timeout no longer lets the lease lapse: the owner renews it while
// the refund runs, so a recoverer running at 30.5s (while the 1s refund
// of ch_1 runs) finds nothing, and the
// older refund runs once, in process. The refund that failed is left in
// the journal, and a later recovery runs it once more (its retry).
func TestDurableDefaultsSlowCompensationRunsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.NewMemory()
		reg := rollback.NewRegistry()
		r := newRefunds(map[string]time.Duration{"ch_2": -1})
		refund, err := rollback.Register(reg, "refund", r.refund)
		require.NoError(t, err)
		cfg := rollback.Config{Journal: j, Registry: reg, Owner: "proc-A"} // default Lease and Timeout

		var wg sync.WaitGroup
		wg.Go(func() { // another process's periodic recoverer
			time.Sleep(30*time.Second + 500*time.Millisecond)
			rep, err := rollback.Recover(context.Background(), j, reg)
			assert.NoError(t, err)
			assert.Empty(t, rep.Workflows, "the owner is alive: nothing to recover")
		})
		step3 := errors.New("step 3 failed")
		_, err = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
			require.NoError(t, refund.OnRollback(ctx, "ch_1"))
			require.NoError(t, refund.OnRollback(ctx, "ch_2"))
			return 0, step3
		}, rollback.WithConfig(cfg))
		wg.Wait()
		require.ErrorIs(t, err, step3)
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		require.Len(t, rbErr.Failures, 1, "ch_2 timed out")
		assert.ErrorIs(t, rbErr.Failures[0].Err, context.DeadlineExceeded)
		assert.NoError(t, rbErr.Journal)
		assert.Equal(t, map[string]int{"ch_1": 1, "ch_2": 1}, r.count())

		rep, err := rollback.Recover(context.Background(), j, reg)
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1, "the failed refund is left for a recovery")
		assert.Equal(t, []string{"refund"}, rep.Workflows[0].Compensated)
		assert.Equal(t, map[string]int{"ch_1": 1, "ch_2": 2}, r.count(), "ch_1 never again")
		assert.Equal(t, 0, j.Len())
	})
}

// A compensation slower than the lease does not lose it: the owner
// renews the lease while it runs (every Lease/3), so a recoverer finds
// nothing to claim and every compensation runs once.
func TestDurableSlowCompensationKeepsLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.NewMemory()
		reg := rollback.NewRegistry()
		r := newRefunds(map[string]time.Duration{"ch_2": 5 * time.Second})
		refund, err := rollback.Register(reg, "refund", r.refund)
		require.NoError(t, err)
		cfg := rollback.Config{Journal: j, Registry: reg, Owner: "proc-A", Lease: time.Second, Attempts: 1}

		var wg sync.WaitGroup
		wg.Go(func() {
			for range 6 { // a recoverer every second
				time.Sleep(time.Second)
				rep, err := rollback.Recover(context.Background(), j, reg)
				assert.NoError(t, err)
				assert.Empty(t, rep.Workflows)
			}
		})
		step3 := errors.New("step 3 failed")
		_, err = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
			require.NoError(t, refund.OnRollback(ctx, "ch_1"))
			require.NoError(t, refund.OnRollback(ctx, "ch_2"))
			return 0, step3
		}, rollback.WithConfig(cfg))
		assert.Equal(t, step3, err, "every compensation ran")
		wg.Wait()
		assert.Equal(t, map[string]int{"ch_1": 1, "ch_2": 1}, r.count())
		assert.Equal(t, 0, j.Len())
	})
}

// partitioned is a journal that the owner cannot reach while down is
// set: its renewals and settlements fail, as in a network partition.
type partitioned struct {
	*journaltest.Memory
	owner string
	down  atomic.Bool
}

var errUnreachable = errors.New("journal unreachable")

func (p *partitioned) Release(ctx context.Context, owner, id string, after time.Duration) error {
	if owner == p.owner && p.down.Load() {
		return errUnreachable
	}
	return p.Memory.Release(ctx, owner, id, after)
}

func (p *partitioned) Settle(ctx context.Context, owner, id string, seq int64, st rollback.Status, lease time.Duration) error {
	if owner == p.owner && p.down.Load() {
		return errUnreachable
	}
	return p.Memory.Settle(ctx, owner, id, seq, st, lease)
}

// An owner cut off from the journal while a compensation runs loses its
// lease; a recoverer claims the workflow and runs its compensations. When
// the owner reaches the journal again, its next lease check fails with
// ErrLeaseLost and it stops: it does not start the older compensation
// the recoverer ran (before the fix it ran it too: ch_1 refunded twice).
// Only the compensation that was running when the lease was lost runs
// twice, the documented at-least-once of an interrupted handler.
func TestDurableStalledOwnerStopsAfterLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &partitioned{Memory: journaltest.NewMemory(), owner: "proc-A"}
		reg := rollback.NewRegistry()
		r := newRefunds(map[string]time.Duration{"ch_2": 5 * time.Second})
		refund, err := rollback.Register(reg, "refund", r.refund)
		require.NoError(t, err)
		cfg := rollback.Config{Journal: j, Registry: reg, Owner: "proc-A", Lease: time.Second, Attempts: 1}

		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(100 * time.Millisecond)
			j.down.Store(true) // partitioned while ch_2 runs
			time.Sleep(1500 * time.Millisecond)
			rep, err := rollback.Recover(context.Background(), j, reg, rollback.WithConfig(rollback.Config{Owner: "proc-B"}))
			assert.NoError(t, err)
			if assert.Len(t, rep.Workflows, 1) {
				assert.Equal(t, []string{"refund", "refund"}, rep.Workflows[0].Compensated)
				assert.True(t, rep.Workflows[0].Finished)
			}
			j.down.Store(false)
		})
		step3 := errors.New("step 3 failed")
		_, err = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
			require.NoError(t, refund.OnRollback(ctx, "ch_1"))
			require.NoError(t, refund.OnRollback(ctx, "ch_2"))
			return 0, step3
		}, rollback.WithConfig(cfg))
		wg.Wait()
		require.ErrorIs(t, err, step3)
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		assert.Empty(t, rbErr.Failures)
		assert.ErrorIs(t, rbErr.Journal, rollback.ErrLeaseLost)
		assert.ErrorIs(t, rbErr.Journal, rollback.ErrJournal)
		assert.Equal(t, []string{"refund"}, rbErr.Skipped, "ch_1 left to the recoverer")
		assert.Equal(t, map[string]int{"ch_1": 1, "ch_2": 2}, r.count())
		assert.Equal(t, 0, j.Len())
	})
}

// A nested scope whose rollback finds the lease lost hands its journaled
// compensations over too, says so, and the enclosing rollback then runs
// none of its own: the recoverer runs them all once. A closure, which no
// recoverer knows, still runs in process.
func TestDurableNestedRollbackAfterLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ctx, sc, err := rollback.Begin(t.Context(), rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		require.NoError(t, f.step(ctx, "outer"))
		closure := 0
		require.NoError(t, rollback.OnRollback(ctx, "closure", func(context.Context) error { closure++; return nil }))
		boom := errors.New("boom")
		_, err = rollback.Do(ctx, func(ctx context.Context) (int, error) {
			require.NoError(t, f.step(ctx, "inner"))
			time.Sleep(11 * time.Second) // stalled past the lease
			rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
			require.NoError(t, err)
			require.Len(t, rep.Workflows, 1)
			assert.Equal(t, []string{"refund", "refund"}, rep.Workflows[0].Compensated)
			return 0, boom
		})
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		assert.ErrorIs(t, rbErr.Journal, rollback.ErrLeaseLost)
		assert.Equal(t, []string{"refund"}, rbErr.Skipped)

		err = sc.Rollback(err)
		require.ErrorAs(t, err, &rbErr)
		assert.ErrorIs(t, rbErr.Journal, rollback.ErrLeaseLost)
		assert.Equal(t, []string{"refund"}, rbErr.Skipped)
		assert.Equal(t, 1, closure)
		charges, refunded := f.l.state()
		assert.Empty(t, charges)
		assert.ElementsMatch(t, []string{"inner", "outer"}, refunded, "each refunded once, by the recoverer")
	})
}

// A recoverer keeps its claim while a compensation without a timeout
// runs longer than its lease: a second recoverer finds nothing, and the
// compensation runs once.
func TestDurableRecovererKeepsClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.NewMemory()
		reg := rollback.NewRegistry()
		r := newRefunds(map[string]time.Duration{"ch_1": 10 * time.Second})
		refund, err := rollback.Register(reg, "refund", r.refund)
		require.NoError(t, err)
		cfg := rollback.Config{Journal: j, Registry: reg, Owner: "proc-A", Lease: time.Second}
		ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(cfg))
		require.NoError(t, err)
		require.NoError(t, refund.OnRollback(ctx, "ch_1"))
		time.Sleep(2 * time.Second) // proc-A died

		opts := rollback.WithConfig(rollback.Config{Owner: "proc-B", Lease: time.Second, Timeout: -1})
		var wg sync.WaitGroup
		wg.Go(func() {
			rep, err := rollback.Recover(t.Context(), j, reg, opts)
			assert.NoError(t, err)
			assert.Len(t, rep.Workflows, 1)
		})
		time.Sleep(5 * time.Second)
		rep, err := rollback.Recover(t.Context(), j, reg, opts)
		require.NoError(t, err)
		assert.Empty(t, rep.Workflows, "claimed by a live recoverer")
		wg.Wait()
		assert.Equal(t, map[string]int{"ch_1": 1}, r.count())
		assert.Equal(t, 0, j.Len())
	})
}

// A top-level Commit that finds the lease lost (the owner stalled after
// its last journal write, and a recoverer undid the journaled part) rolls
// back the closures in process, which no recoverer knows, instead of
// leaving their effects behind, and returns an error wrapping
// ErrLeaseLost.
func TestDurableCommitAfterLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ctx, sc, err := rollback.Begin(t.Context(), rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		require.NoError(t, f.step(ctx, "c1"))
		time.Sleep(11 * time.Second) // stalled past the lease
		rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		closure := 0
		require.NoError(t, rollback.OnRollback(ctx, "closure", func(context.Context) error { closure++; return nil }))

		err = sc.Commit()
		require.ErrorIs(t, err, rollback.ErrLeaseLost)
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		assert.ErrorIs(t, rbErr.Journal, rollback.ErrLeaseLost)
		assert.Equal(t, []string{"refund"}, rbErr.Skipped, "c1 is the recoverer's")
		assert.Equal(t, 1, closure)
		charges, refunds := f.l.state()
		assert.Empty(t, charges)
		assert.Equal(t, []string{"c1"}, refunds, "refunded once, by the recoverer")
	})
}

// A saga whose owner stalls in a step past its lease, while a recoverer
// undoes the journaled steps, then finishes its steps: the Undo of a
// later step, a closure, runs in process when the saga's end finds the
// lease lost, and each step is undone once.
func TestDurableSagaStepAfterLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		var undone []string
		g, err := rollback.NewSaga([]rollback.Step[chargeTrip]{
			{Name: "flight", Do: func(_ context.Context, s *chargeTrip) error { f.l.charge(s.Flight); return nil },
				Compensation: rollback.UndoWith(f.refund, func(s *chargeTrip) refundArgs { return refundArgs{Charge: s.Flight} })},
			{Name: "hotel", Do: func(_ context.Context, s *chargeTrip) error {
				time.Sleep(11 * time.Second) // stalled past the lease
				rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
				assert.NoError(t, err)
				assert.Len(t, rep.Workflows, 1)
				return nil
			}, Undo: func(_ context.Context, s *chargeTrip) error { undone = append(undone, s.Hotel); return nil }},
		}, rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		err = g.Run(t.Context(), &chargeTrip{Flight: "f-1", Hotel: "h-1"})
		require.ErrorIs(t, err, rollback.ErrLeaseLost)
		assert.Equal(t, []string{"h-1"}, undone)
		charges, refunds := f.l.state()
		assert.Empty(t, charges)
		assert.Equal(t, []string{"f-1"}, refunds, "refunded once, by the recoverer")
	})
}

// A nested scope whose compensation failed leaves it in the journal; the
// rollback of the enclosing workflow, whose own compensations succeed,
// then releases the workflow to a recoverer instead of removing it, so
// that the failed compensation is retried (it was lost before).
func TestDurableNestedFailureLeftForRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		boom := errors.New("boom")
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			require.NoError(t, f.step(ctx, "outer"))
			_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
				require.NoError(t, f.step(ctx, "inner"))
				f.l.mu.Lock()
				f.l.failures = rollback.DefaultAttempts // the inner refund fails in process
				f.l.mu.Unlock()
				return 0, boom
			})
			var rbErr *rollback.Error
			require.ErrorAs(t, err, &rbErr)
			require.Len(t, rbErr.Failures, 1)
			return 0, err
		}, rollback.WithConfig(f.cfg))
		require.ErrorIs(t, err, boom)
		charges, _ := f.l.state()
		assert.Equal(t, []string{"inner"}, charges)
		assert.Equal(t, 1, f.j.Len(), "left for a recoverer")

		rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		assert.Equal(t, []string{"refund"}, rep.Workflows[0].Compensated)
		charges, _ = f.l.state()
		assert.Empty(t, charges)
		assert.Equal(t, 0, f.j.Len())
	})
}

// cut is one process's view of a shared journal: while down is set, its
// lease renewals (Release) fail, as when its connection to the database
// drops.
type cut struct {
	*journaltest.Memory
	down atomic.Bool
}

func (c *cut) Release(ctx context.Context, owner, id string, after time.Duration) error {
	if c.down.Load() {
		return errUnreachable
	}
	return c.Memory.Release(ctx, owner, id, after)
}

// A recoverer checks its claim before every attempt of a compensation,
// as an owner does, not only before the first: recoverer 1's first
// refund fails, it loses the journal during the backoff (its renewals
// fail, its lease runs out) and recoverer 2 claims the workflow and
// refunds. When recoverer 1 reaches the journal again, its retry finds
// the claim lost and does not run: before the fix it retried the bare
// handler and ch_1 was refunded twice.
func TestDurableRecovererRetryChecksClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := journaltest.NewMemory()
		j1 := &cut{Memory: mem}
		var runs atomic.Int32
		reg := rollback.NewRegistry()
		refund, err := rollback.Register(reg, "refund", func(_ context.Context, charge string) error {
			if runs.Add(1) == 1 { // recoverer 1's first attempt
				j1.down.Store(true)
				return errors.New("payments: 503")
			}
			return nil
		})
		require.NoError(t, err)
		ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(rollback.Config{Journal: mem, Registry: reg, Owner: "proc-A", Lease: time.Second}))
		require.NoError(t, err)
		require.NoError(t, refund.OnRollback(ctx, "ch_1"))
		time.Sleep(2 * time.Second) // proc-A died

		var wg sync.WaitGroup
		var rep1 rollback.RecoveryReport
		wg.Go(func() {
			var err error
			rep1, err = rollback.Recover(t.Context(), j1, reg, rollback.WithConfig(rollback.Config{
				Owner: "rec-1", Lease: time.Second, Timeout: -1, Attempts: 2, InitialInterval: 10 * time.Second,
			}))
			assert.NoError(t, err)
		})
		time.Sleep(3 * time.Second) // recoverer 1 in its backoff, its lease ran out
		rep2, err := rollback.Recover(t.Context(), mem, reg, rollback.WithConfig(rollback.Config{Owner: "rec-2", Lease: time.Minute}))
		require.NoError(t, err)
		require.Len(t, rep2.Workflows, 1)
		assert.Equal(t, []string{"refund"}, rep2.Workflows[0].Compensated)
		assert.True(t, rep2.Workflows[0].Finished)
		j1.down.Store(false) // recoverer 1 reaches the journal again
		wg.Wait()

		assert.Equal(t, int32(2), runs.Load(), "one failed attempt, one refund: ch_1 refunded once")
		require.Len(t, rep1.Workflows, 1)
		w := rep1.Workflows[0]
		assert.Empty(t, w.Compensated)
		assert.Empty(t, w.Failures, "handed over, not failed")
		assert.False(t, w.Finished)
		assert.ErrorIs(t, w.Err, rollback.ErrLeaseLost)
		assert.ErrorIs(t, w.Err, rollback.ErrJournal)
		assert.Equal(t, 0, mem.Len())
	})
}

// The same holds for a guard at recovery: recoverer 1 undoes the step,
// its guard's first try fails and it loses the journal during the
// backoff; recoverer 2 claims the workflow and runs the guard. Recoverer
// 1's retry finds the claim lost and does not run the guard again
// (before the fix the key was forgotten twice, the second time possibly
// after a rerun had stored it anew).
func TestDurableRecovererGuardRetryChecksClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := journaltest.NewMemory()
		j1 := &cut{Memory: mem}
		reg := rollback.NewRegistry()
		var refunds, forgets atomic.Int32
		refund, err := rollback.Register(reg, "refund", func(context.Context, string) error { refunds.Add(1); return nil })
		require.NoError(t, err)
		forget, err := rollback.RegisterGuard(reg, "forget", func(context.Context, string) error {
			if forgets.Add(1) == 1 { // recoverer 1's first try
				j1.down.Store(true)
				return errors.New("store: 503")
			}
			return rollback.ErrNoEffect
		})
		require.NoError(t, err)
		ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(rollback.Config{Journal: mem, Registry: reg, Owner: "proc-A", Lease: time.Second}))
		require.NoError(t, err)
		p, err := forget.Before(ctx, "k1")
		require.NoError(t, err)
		require.NoError(t, refund.OnRollback(ctx, "ch_1"))
		require.NoError(t, p.Confirm(ctx))
		time.Sleep(2 * time.Second) // proc-A died

		var wg sync.WaitGroup
		var rep1 rollback.RecoveryReport
		wg.Go(func() {
			var err error
			rep1, err = rollback.Recover(t.Context(), j1, reg, rollback.WithConfig(rollback.Config{
				Owner: "rec-1", Lease: time.Second, Timeout: -1, Attempts: 2, InitialInterval: 10 * time.Second,
			}))
			assert.NoError(t, err)
		})
		time.Sleep(3 * time.Second)
		rep2, err := rollback.Recover(t.Context(), mem, reg, rollback.WithConfig(rollback.Config{Owner: "rec-2", Lease: time.Minute}))
		require.NoError(t, err)
		require.Len(t, rep2.Workflows, 1)
		assert.Equal(t, []string{"forget"}, rep2.Workflows[0].NoEffect)
		assert.True(t, rep2.Workflows[0].Finished)
		j1.down.Store(false)
		wg.Wait()

		assert.Equal(t, int32(1), refunds.Load())
		assert.Equal(t, int32(2), forgets.Load(), "one failed try, one forget")
		require.Len(t, rep1.Workflows, 1)
		assert.Equal(t, []string{"refund"}, rep1.Workflows[0].Compensated)
		assert.Empty(t, rep1.Workflows[0].NoEffect)
		assert.Empty(t, rep1.Workflows[0].Failures)
		assert.ErrorIs(t, rep1.Workflows[0].Err, rollback.ErrLeaseLost)
		assert.Equal(t, 0, mem.Len())
	})
}
