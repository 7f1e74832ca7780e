package bulwark_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

func TestReportNilSafe(t *testing.T) {
	var r *bulwark.Report
	assert.NotPanics(t, func() {
		r.SetAttempts(3)
		r.SetFromCache()
		r.SetReplayed()
		r.SetRejected()
		r.SetRolledBack()
	})
	assert.Zero(t, r.Attempts())
	assert.False(t, r.FromCache())
	assert.False(t, r.Replayed())
	assert.False(t, r.Rejected())
	assert.False(t, r.RolledBack())
}

func TestReportFromWithoutReport(t *testing.T) {
	r := bulwark.ReportFrom(context.Background())
	assert.Nil(t, r)
	r.SetReplayed() // must not panic
	assert.False(t, r.Replayed())
}

func TestReportCarriedByContext(t *testing.T) {
	ctx, r := bulwark.WithReport(t.Context())
	assert.Same(t, r, bulwark.ReportFrom(ctx))

	bulwark.ReportFrom(ctx).SetAttempts(2)
	bulwark.ReportFrom(ctx).SetFromCache()
	assert.Equal(t, 2, r.Attempts())
	assert.True(t, r.FromCache())
	assert.False(t, r.Replayed())
	assert.False(t, r.Rejected())
	assert.False(t, r.RolledBack())

	// A nested WithReport starts a fresh report and leaves the outer one alone.
	inner, r2 := bulwark.WithReport(ctx)
	bulwark.ReportFrom(inner).SetRolledBack()
	assert.True(t, r2.RolledBack())
	assert.False(t, r.RolledBack())
}

func TestReportConcurrentAnnotation(t *testing.T) {
	_, r := bulwark.WithReport(t.Context())
	setters := []func(){r.SetFromCache, r.SetReplayed, r.SetRejected, r.SetRolledBack}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			setters[i%len(setters)]()
			r.SetAttempts(i + 1)
			_ = r.FromCache() || r.Replayed() || r.Rejected() || r.RolledBack()
			_ = r.Attempts()
		})
	}
	wg.Wait()
	assert.True(t, r.FromCache())
	assert.True(t, r.Replayed())
	assert.True(t, r.Rejected())
	assert.True(t, r.RolledBack())
	assert.GreaterOrEqual(t, r.Attempts(), 1)
	assert.LessOrEqual(t, r.Attempts(), 64)
}

func TestWithReportOneAllocation(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, r := bulwark.WithReport(ctx)
		r.SetAttempts(1)
		if bulwark.ReportFrom(c) != r {
			t.Fatal("report not found")
		}
	})
	assert.LessOrEqual(t, allocs, 1.0)
}

func TestWithReportKeepsParent(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancelCause(context.WithValue(t.Context(), key{}, "v"))
	ctx, _ := bulwark.WithReport(parent)
	assert.Equal(t, "v", ctx.Value(key{}))

	child, stop := context.WithCancel(ctx)
	defer stop()
	cause := errors.New("gone")
	cancel(cause)
	<-child.Done()
	assert.ErrorIs(t, context.Cause(child), cause)
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
}

// callContext is a per-call context of another package that carries its
// Report inline, answering Value(bulwark.ReportKey{}).
type callContext struct {
	context.Context
	report bulwark.Report
}

func (c *callContext) Value(key any) any {
	if key == (bulwark.ReportKey{}) {
		return &c.report
	}
	return c.Context.Value(key)
}

func TestReportKeyLetsOtherContextsCarryAReport(t *testing.T) {
	c := &callContext{Context: t.Context()}
	bulwark.ReportFrom(c).SetFromCache()
	assert.True(t, c.report.FromCache())
	assert.Same(t, &c.report, bulwark.ReportFrom(c))
}

func TestReportAbandonNilSafe(t *testing.T) {
	var r *bulwark.Report
	r.Abandon(func() (any, error) { return nil, nil })
	assert.Zero(t, r.Abandoned())
	assert.Nil(t, r.TakeAbandoned(0))
	_, r = bulwark.WithReport(t.Context())
	r.Abandon(nil)
	assert.Zero(t, r.Abandoned(), "a nil wait is not recorded")
}

func TestReportTakeAbandonedSinceMark(t *testing.T) {
	_, r := bulwark.WithReport(t.Context())
	r.Abandon(func() (any, error) { return "outer", nil })
	mark := r.Abandoned()
	assert.Equal(t, 1, mark)
	assert.Nil(t, r.TakeAbandoned(mark), "nothing recorded after the mark")

	r.Abandon(func() (any, error) { return "inner", nil })
	wait := r.TakeAbandoned(mark)
	require.NotNil(t, wait)
	v, err := wait()
	require.NoError(t, err)
	assert.Equal(t, "inner", v)
	assert.Equal(t, mark, r.Abandoned(), "the ones before the mark stay")

	wait = r.TakeAbandoned(0)
	require.NotNil(t, wait)
	v, _ = wait()
	assert.Equal(t, "outer", v)
	assert.Zero(t, r.Abandoned())
	assert.Nil(t, r.TakeAbandoned(0))
}

// TakeAbandoned waits for every operation taken, and answers with the
// newest one's outcome unless an older one succeeded.
func TestReportTakeAbandonedWaitsForAll(t *testing.T) {
	_, r := bulwark.WithReport(t.Context())
	late := errors.New("late failure")
	var waited []string
	r.Abandon(func() (any, error) { waited = append(waited, "first"); return "first", nil })
	r.Abandon(func() (any, error) { waited = append(waited, "second"); return nil, late })
	v, err := r.TakeAbandoned(0)()
	require.NoError(t, err)
	assert.Equal(t, "first", v, "an older success wins over a newer failure")
	assert.ElementsMatch(t, []string{"first", "second"}, waited)

	r.Abandon(func() (any, error) { return nil, errors.New("older failure") })
	r.Abandon(func() (any, error) { return nil, late })
	_, err = r.TakeAbandoned(0)()
	assert.Same(t, late, err, "the newest failure when none succeeded")
}

func TestReportAbandonConcurrent(t *testing.T) {
	_, r := bulwark.WithReport(t.Context())
	var wg sync.WaitGroup
	var calls [50]atomic.Int32
	for i := range calls {
		wg.Go(func() { r.Abandon(func() (any, error) { calls[i].Add(1); return i, nil }) })
		if i%5 == 0 {
			wg.Go(func() {
				if w := r.TakeAbandoned(0); w != nil {
					_, _ = w()
				}
			})
		}
	}
	wg.Wait()
	if w := r.TakeAbandoned(0); w != nil {
		_, _ = w()
	}
	for i := range calls {
		assert.EqualValues(t, 1, calls[i].Load(), "abandonment %d: taken exactly once", i)
	}
}

// Attempts and flags share one word: setting one keeps the other, and
// the attempts saturate instead of wrapping into the flags.
func TestReportAttemptsKeepFlags(t *testing.T) {
	_, r := bulwark.WithReport(t.Context())
	r.SetFromCache()
	r.SetAttempts(3)
	r.SetRolledBack()
	assert.Equal(t, 3, r.Attempts())
	assert.True(t, r.FromCache())
	assert.True(t, r.RolledBack())
	assert.False(t, r.Replayed())
	r.SetAttempts(math.MaxInt)
	assert.Equal(t, math.MaxUint32, r.Attempts())
	r.SetAttempts(-1)
	assert.Zero(t, r.Attempts())
	assert.True(t, r.FromCache() && r.RolledBack() && !r.Rejected(), "flags untouched")
}

func TestReportClearRejected(t *testing.T) {
	_, r := bulwark.WithReport(context.Background())
	r.SetRejected()
	r.SetFromCache()
	r.ClearRejected()
	assert.False(t, r.Rejected())
	assert.True(t, r.FromCache(), "the other flags stay")
	var none *bulwark.Report
	assert.NotPanics(t, none.ClearRejected)
}
