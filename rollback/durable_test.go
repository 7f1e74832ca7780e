package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
)

// refundArgs is the argument type of the test's durable compensation.
type refundArgs struct {
	Charge string `json:"charge"`
	Cents  int    `json:"cents"`
}

// ledger is the test's remote service: charges made and refunded, and the
// calls of the refund handler.
type ledger struct {
	mu       sync.Mutex
	charges  map[string]bool
	refunds  []string
	failures int // the next refunds that fail
}

func newLedger() *ledger { return &ledger{charges: map[string]bool{}} }

func (l *ledger) charge(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.charges[id] = true
}

// refund undoes a charge, tolerating one that never happened.
func (l *ledger) refund(_ context.Context, a refundArgs) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failures > 0 {
		l.failures--
		return errors.New("ledger: 503")
	}
	l.refunds = append(l.refunds, a.Charge)
	if !l.charges[a.Charge] {
		return rollback.ErrNoEffect
	}
	delete(l.charges, a.Charge)
	return nil
}

func (l *ledger) state() (charges []string, refunds []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.charges {
		charges = append(charges, c)
	}
	return charges, append([]string(nil), l.refunds...)
}

type fixture struct {
	j      *journaltest.Memory
	reg    *rollback.Registry
	l      *ledger
	refund rollback.Compensation[refundArgs]
	cfg    rollback.Config
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{j: journaltest.NewMemory(), reg: rollback.NewRegistry(), l: newLedger()}
	var err error
	f.refund, err = rollback.Register(f.reg, "refund", f.l.refund)
	require.NoError(t, err)
	f.cfg = rollback.Config{Journal: f.j, Registry: f.reg, Owner: "owner-1", Lease: 10 * time.Second, InitialInterval: time.Millisecond}
	return f
}

// step charges id, guarded by a pending compensation confirmed after.
func (f *fixture) step(ctx context.Context, id string) error {
	p, err := f.refund.Before(ctx, refundArgs{Charge: id, Cents: 100})
	if err != nil {
		return err
	}
	f.l.charge(id)
	return p.Confirm(ctx)
}

func (f *fixture) recoverer(opts ...rollback.Option) []rollback.Option {
	return append([]rollback.Option{rollback.WithConfig(rollback.Config{Owner: "recoverer", InitialInterval: time.Millisecond})}, opts...)
}

// A committed workflow leaves nothing in the journal.
func TestDurableCommitFinishes(t *testing.T) {
	f := newFixture(t)
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		return 0, errors.Join(f.step(ctx, "c1"), f.step(ctx, "c2"))
	}, rollback.WithConfig(f.cfg))
	require.NoError(t, err)
	assert.Equal(t, 0, f.j.Len())
	charges, refunds := f.l.state()
	assert.Len(t, charges, 2)
	assert.Empty(t, refunds)
}

// A rollback in process runs the durable compensations, records them and
// leaves nothing for a recoverer.
func TestDurableRollbackInProcess(t *testing.T) {
	f := newFixture(t)
	boom := errors.New("boom")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		require.NoError(t, f.step(ctx, "c1"))
		require.NoError(t, f.step(ctx, "c2"))
		return 0, boom
	}, rollback.WithConfig(f.cfg))
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 0, f.j.Len())
	charges, refunds := f.l.state()
	assert.Empty(t, charges)
	assert.Equal(t, []string{"c2", "c1"}, refunds)
}

// A workflow abandoned mid-way (its process died: the scope never ends)
// is recovered once its lease expires: every compensation runs once,
// newest first, pending ones included, with its arguments decoded.
func TestDurableRecoverAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ctx, sc, err := rollback.Begin(t.Context(), rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		require.NoError(t, f.step(ctx, "c1"))
		require.NoError(t, f.step(ctx, "c2"))
		_, err = f.refund.Before(ctx, refundArgs{Charge: "c3"}) // dies before charging
		require.NoError(t, err)
		_ = sc // the process "dies": the scope is never ended

		rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		assert.Empty(t, rep.Workflows, "the lease holds")

		time.Sleep(11 * time.Second)
		var evs events
		rep, err = rollback.Recover(t.Context(), f.j, f.reg, f.recoverer(func(c *rollback.Config) { c.OnEvent = evs.listen })...)
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		w := rep.Workflows[0]
		assert.Equal(t, "owner-1", w.PreviousOwner)
		assert.Equal(t, []string{"refund", "refund"}, w.Compensated)
		assert.Equal(t, []string{"refund"}, w.NoEffect)
		assert.True(t, w.Finished)
		assert.NoError(t, w.Err)
		assert.Equal(t, 2, rep.Compensated())
		charges, refunds := f.l.state()
		assert.Empty(t, charges, "no orphaned effect")
		assert.Equal(t, []string{"c3", "c2", "c1"}, refunds)
		assert.Equal(t, 0, f.j.Len())

		got := evs.all()
		require.Len(t, got, 2, "no event for the compensation with no effect")
		assert.Equal(t, bulwark.RollbackCompensated, got[0].Kind)
		assert.Equal(t, "refund", got[0].Step)
		d, ok := got[0].Detail.(rollback.Recovered)
		require.True(t, ok, "Detail %T", got[0].Detail)
		assert.Equal(t, rollback.Recovered{Workflow: w.ID, PreviousOwner: "owner-1", Seq: 2, Confirmed: true}, d)

		// The owner's scope, if it came back, is fenced off.
		err = sc.Commit()
		require.ErrorIs(t, err, rollback.ErrJournal)
		require.ErrorIs(t, err, rollback.ErrLeaseLost)

		rep, err = rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		assert.Empty(t, rep.Workflows, "recovered once")
	})
}

// A compensation that fails in process is left to a recoverer, which runs
// it (and only it) again, with the configured retries.
func TestDurableFailedCompensationRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		f.l.failures = 3 // c2's three attempts
		boom := errors.New("boom")
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			require.NoError(t, f.step(ctx, "c1"))
			require.NoError(t, f.step(ctx, "c2"))
			return 0, boom
		}, rollback.WithConfig(f.cfg))
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		require.Len(t, rbErr.Failures, 1)
		charges, _ := f.l.state()
		assert.Equal(t, []string{"c2"}, charges)

		f.l.failures = 2 // the recoverer's third attempt succeeds
		rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		assert.Equal(t, []string{"refund"}, rep.Workflows[0].Compensated)
		assert.Empty(t, rep.Workflows[0].Failures)
		charges, refunds := f.l.state()
		assert.Empty(t, charges)
		assert.Equal(t, []string{"c1", "c2"}, refunds)
	})
}

// A failure at recovery releases the workflow for a later Recover, one
// Lease later; an unknown handler name is such a failure.
func TestDurableRecoverFailureReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		require.NoError(t, f.step(ctx, "c1"))
		time.Sleep(11 * time.Second)

		empty := rollback.NewRegistry()
		rep, err := rollback.Recover(t.Context(), f.j, empty, f.recoverer(func(c *rollback.Config) { c.Lease = time.Minute })...)
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		require.Len(t, rep.Workflows[0].Failures, 1)
		assert.ErrorIs(t, rep.Workflows[0].Failures[0].Err, rollback.ErrNotRegistered)
		assert.False(t, rep.Workflows[0].Finished)

		rep, err = rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		assert.Empty(t, rep.Workflows, "released for a minute")

		time.Sleep(time.Minute)
		rep, err = rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		assert.Equal(t, []string{"refund"}, rep.Workflows[0].Compensated)
		assert.True(t, strings.HasPrefix(rep.Workflows[0].PreviousOwner, "recoverer/recover-"), rep.Workflows[0].PreviousOwner)
	})
}

// An owner whose lease expired and was claimed gets an error it can see
// at its next journal write, and its step does not run.
func TestDurableOwnerFencedOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ctx, sc, err := rollback.Begin(t.Context(), rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		require.NoError(t, f.step(ctx, "c1"))
		time.Sleep(11 * time.Second) // a stalled owner
		_, err = rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)

		err = f.step(ctx, "c2")
		require.ErrorIs(t, err, rollback.ErrLeaseLost)
		require.ErrorIs(t, err, rollback.ErrJournal)
		charges, _ := f.l.state()
		assert.Empty(t, charges, "c2 never charged, c1 refunded")

		err = sc.Rollback(err)
		var rbErr *rollback.Error
		require.ErrorAs(t, err, &rbErr)
		assert.ErrorIs(t, rbErr.Journal, rollback.ErrLeaseLost)
	})
}

// KeepAlive renews all of an owner's workflows, so a step longer than the
// lease does not get its workflow recovered under it.
func TestDurableKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		kctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() {
			err := rollback.KeepAlive(kctx, f.j, f.cfg.Owner, f.cfg.Lease, func(err error) { t.Error(err) })
			assert.ErrorIs(t, err, context.Canceled)
		})
		for range 3 {
			ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(f.cfg))
			require.NoError(t, err)
			require.NoError(t, f.step(ctx, "c"))
		}
		time.Sleep(time.Minute)
		rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		assert.Empty(t, rep.Workflows, "kept alive")

		stop()
		wg.Wait()
		time.Sleep(11 * time.Second)
		rep, err = rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		assert.Len(t, rep.Workflows, 3, "abandoned once the renewals stopped")
	})
}

// Two recoverers racing: each abandoned workflow is recovered by exactly
// one, each compensation runs once.
func TestDurableRacingRecoverers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		const n = 30
		for i := range n {
			ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(f.cfg))
			require.NoError(t, err)
			require.NoError(t, f.step(ctx, fmt.Sprintf("c%d", i)))
		}
		time.Sleep(11 * time.Second)
		reps := make([]rollback.RecoveryReport, 2)
		var wg sync.WaitGroup
		for r := range reps {
			wg.Go(func() {
				var err error
				reps[r], err = rollback.Recover(t.Context(), f.j, f.reg, f.recoverer(func(c *rollback.Config) { c.Owner = fmt.Sprint("r", r) })...)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		seen := map[string]int{}
		for _, rep := range reps {
			for _, w := range rep.Workflows {
				seen[w.ID]++
			}
		}
		assert.Len(t, seen, n)
		for id, k := range seen {
			assert.Equal(t, 1, k, id)
		}
		charges, refunds := f.l.state()
		assert.Empty(t, charges)
		assert.Len(t, refunds, n)
	})
}

// A saga's pivot discards the durable compensations before it: a recovery
// does not run them.
func TestDurableSagaPivot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		type st struct{}
		hang := make(chan struct{})
		saga, err := rollback.NewSaga([]rollback.Step[st]{
			{Name: "charge", Do: func(ctx context.Context, _ *st) error { return f.step(ctx, "c1") }},
			{Name: "ship", Pivot: true, Do: func(context.Context, *st) error { return nil }},
			{Name: "charge fee", Do: func(ctx context.Context, _ *st) error {
				if err := f.step(ctx, "fee"); err != nil {
					return err
				}
				<-hang // the process dies here
				return nil
			}},
		}, rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		go func() { _ = saga.Run(t.Context(), &st{}) }()
		synctest.Wait()
		time.Sleep(11 * time.Second)
		rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		charges, refunds := f.l.state()
		assert.Equal(t, []string{"c1"}, charges, "before the pivot: kept")
		assert.Equal(t, []string{"fee"}, refunds)
		close(hang)
	})
}

// Nested scopes write to their top-level scope's workflow.
func TestDurableNested(t *testing.T) {
	f := newFixture(t)
	boom := errors.New("boom")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
			return 0, f.step(ctx, "inner")
		})
		require.NoError(t, err)
		require.NoError(t, f.step(ctx, "outer"))
		assert.Equal(t, 1, f.j.Len())
		return 0, boom
	}, rollback.WithConfig(f.cfg))
	require.ErrorIs(t, err, boom)
	_, refunds := f.l.state()
	assert.Equal(t, []string{"outer", "inner"}, refunds)
	assert.Equal(t, 0, f.j.Len())
}

func TestDurableInvalid(t *testing.T) {
	f := newFixture(t)
	for name, c := range map[string]rollback.Config{
		"Config.Registry": {Journal: f.j, Owner: "o"},
		"Config.Owner":    {Journal: f.j, Registry: f.reg},
		"Config.Lease":    {Lease: -1},
	} {
		err := c.Validate()
		require.ErrorIs(t, err, rollback.ErrInvalid, name)
		assert.Contains(t, err.Error(), name)
	}
	_, err := rollback.Register(f.reg, "refund", f.l.refund)
	assert.ErrorIs(t, err, rollback.ErrInvalid, "duplicate name")
	_, err = rollback.Register[int](nil, "x", func(context.Context, int) error { return nil })
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	_, err = rollback.Register[int](f.reg, "", func(context.Context, int) error { return nil })
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	_, err = rollback.Register[int](f.reg, "x", nil)
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	_, err = rollback.Recover(t.Context(), nil, f.reg)
	assert.ErrorIs(t, err, rollback.ErrInvalid)
	_, err = rollback.Recover(t.Context(), f.j, nil)
	assert.ErrorIs(t, err, rollback.ErrInvalid)

	// A compensation from another registry cannot be journaled: its
	// recoverer would not know it.
	other, err := rollback.Register(rollback.NewRegistry(), "other", func(context.Context, int) error { return nil })
	require.NoError(t, err)
	_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		return 0, other.OnRollback(ctx, 1)
	}, rollback.WithConfig(f.cfg))
	require.ErrorIs(t, err, rollback.ErrInvalid)
	assert.Contains(t, err.Error(), `"other"`)

	// Arguments that JSON cannot encode are refused before the step.
	bad, err := rollback.Register(f.reg, "bad", func(context.Context, chan int) error { return nil })
	require.NoError(t, err)
	_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		return 0, bad.OnRollback(ctx, make(chan int))
	}, rollback.WithConfig(f.cfg))
	require.ErrorIs(t, err, rollback.ErrInvalid)
	assert.Equal(t, 0, f.j.Len())

	_, err = f.refund.Before(t.Context(), refundArgs{})
	assert.ErrorIs(t, err, rollback.ErrNoScope)
	var zero rollback.Compensation[int]
	assert.ErrorIs(t, zero.OnRollback(t.Context(), 1), rollback.ErrInvalid)
}

// Without a journal a Compensation works in memory, like OnRollback.
func TestCompensationWithoutJournal(t *testing.T) {
	f := newFixture(t)
	boom := errors.New("boom")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		require.NoError(t, f.step(ctx, "c1"))
		require.NoError(t, f.refund.OnRollback(ctx, refundArgs{Charge: "c0"}))
		return 0, boom
	})
	require.ErrorIs(t, err, boom)
	_, refunds := f.l.state()
	assert.Equal(t, []string{"c0", "c1"}, refunds)
	assert.Equal(t, 0, f.j.Len())
}

// A process recovering under its own Owner name still fences off its own
// stalled workflow: each Recover claims under a name of its own.
func TestDurableRecoverUnderOwnName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		require.NoError(t, f.step(ctx, "c1"))
		time.Sleep(11 * time.Second) // stalled
		rep, err := rollback.Recover(t.Context(), f.j, f.reg, rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		assert.ErrorIs(t, f.step(ctx, "c2"), rollback.ErrLeaseLost)
	})
}

// A journaled scope nested in a scope without a journal is a workflow of
// its own: when it commits, the journal forgets it, and its compensations
// are handed to the enclosing scope, in memory, as without a journal.
func TestDurableInsideMemoryScope(t *testing.T) {
	f := newFixture(t)
	boom := errors.New("boom")
	_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
			return 0, f.step(ctx, "inner")
		}, rollback.WithConfig(f.cfg))
		require.NoError(t, err)
		assert.Equal(t, 0, f.j.Len(), "the workflow ended")
		return 0, boom
	})
	require.ErrorIs(t, err, boom)
	var rbErr *rollback.Error
	assert.False(t, errors.As(err, &rbErr), "no journal error: %v", err)
	_, refunds := f.l.state()
	assert.Equal(t, []string{"inner"}, refunds, "undone by the enclosing scope")
}

// Recover claims at most MaxRecoveredPerCall workflows per call.
func TestDurableRecoverBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		n := rollback.MaxRecoveredPerCall + 5
		for range n {
			ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(f.cfg))
			require.NoError(t, err)
			require.NoError(t, f.refund.OnRollback(ctx, refundArgs{Charge: "none"}))
		}
		time.Sleep(11 * time.Second)
		rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		assert.Len(t, rep.Workflows, rollback.MaxRecoveredPerCall)
		assert.True(t, rep.More)
		rep, err = rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		assert.Len(t, rep.Workflows, 5)
		assert.False(t, rep.More)
		assert.Equal(t, 0, f.j.Len())
	})
}

// chargeTrip is the state of the durable saga tests: the charge ids are
// chosen before the steps run, so the compensations can be journaled
// first.
type chargeTrip struct {
	Flight, Hotel, Car string
}

func durableSaga(t *testing.T, f *fixture, car func(ctx context.Context, s *chargeTrip) error) *rollback.Saga[chargeTrip] {
	t.Helper()
	charge := func(id func(*chargeTrip) string) func(context.Context, *chargeTrip) error {
		return func(_ context.Context, s *chargeTrip) error { f.l.charge(id(s)); return nil }
	}
	g, err := rollback.NewSaga([]rollback.Step[chargeTrip]{
		{Name: "flight", Do: charge(func(s *chargeTrip) string { return s.Flight }),
			Compensation: rollback.UndoWith(f.refund, func(s *chargeTrip) refundArgs { return refundArgs{Charge: s.Flight} })},
		{Name: "hotel", Do: charge(func(s *chargeTrip) string { return s.Hotel }),
			Compensation: rollback.UndoWith(f.refund, func(s *chargeTrip) refundArgs { return refundArgs{Charge: s.Hotel} })},
		{Name: "car", Do: car,
			Compensation: rollback.UndoWith(f.refund, func(s *chargeTrip) refundArgs { return refundArgs{Charge: s.Car} })},
	}, rollback.WithConfig(f.cfg))
	require.NoError(t, err)
	return g
}

// A saga step's Compensation is journaled before its Do and runs on
// failure, whether or not the Do took effect.
func TestDurableSagaSteps(t *testing.T) {
	f := newFixture(t)
	sold := errors.New("sold out")
	g := durableSaga(t, f, func(context.Context, *chargeTrip) error { return sold })
	err := g.Run(t.Context(), &chargeTrip{Flight: "f-1", Hotel: "h-1", Car: "c-1"})
	require.ErrorIs(t, err, sold)
	charges, refunds := f.l.state()
	assert.Empty(t, charges)
	assert.Equal(t, []string{"c-1", "h-1", "f-1"}, refunds, "the car's compensation runs too (ErrNoEffect)")
	assert.Equal(t, 0, f.j.Len())
}

// A saga whose process dies in a step is recovered from the journal.
func TestDurableSagaRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		hang := make(chan struct{})
		g := durableSaga(t, f, func(_ context.Context, s *chargeTrip) error {
			f.l.charge(s.Car)
			<-hang // the process dies here, the car charged but not confirmed
			return nil
		})
		go func() { _ = g.Run(t.Context(), &chargeTrip{Flight: "f-1", Hotel: "h-1", Car: "c-1"}) }()
		synctest.Wait()
		time.Sleep(11 * time.Second)
		rep, err := rollback.Recover(t.Context(), f.j, f.reg, f.recoverer()...)
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		assert.Equal(t, []string{"refund", "refund", "refund"}, rep.Workflows[0].Compensated)
		charges, refunds := f.l.state()
		assert.Empty(t, charges, "no orphaned charge")
		assert.Equal(t, []string{"c-1", "h-1", "f-1"}, refunds)
		close(hang)
	})
}

func TestDurableSagaInvalid(t *testing.T) {
	f := newFixture(t)
	comp := rollback.UndoWith(f.refund, func(*chargeTrip) refundArgs { return refundArgs{} })
	do := func(context.Context, *chargeTrip) error { return nil }
	for field, st := range map[string]rollback.Step[chargeTrip]{
		"Steps[0].Compensation: set on a pivot step": {Name: "a", Do: do, Pivot: true, Compensation: comp},
		"Steps[0].Compensation: set with an Undo":    {Name: "a", Do: do, Undo: do, Compensation: comp},
	} {
		_, err := rollback.NewSaga([]rollback.Step[chargeTrip]{st})
		require.ErrorIs(t, err, rollback.ErrInvalid)
		assert.Contains(t, err.Error(), field)
	}
	ran := false
	g, err := rollback.NewSaga([]rollback.Step[chargeTrip]{{Name: "a",
		Do:           func(context.Context, *chargeTrip) error { ran = true; return nil },
		Compensation: rollback.UndoWith[chargeTrip, refundArgs](f.refund, nil)}})
	require.NoError(t, err)
	err = g.Run(t.Context(), &chargeTrip{})
	require.ErrorIs(t, err, rollback.ErrInvalid)
	assert.False(t, ran, "Do does not run when its compensation cannot be registered")
}
