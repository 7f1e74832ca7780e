package retry_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/retry"
)

// TestBudgetCapsRetriesInOutage: a 100% outage with 1,000 calls, started
// one every 10ms over 10s, each allowed 5 attempts. Without a budget the
// service would see 5,000 attempts; with a budget of ratio 0.2, floor 10/s
// over a 10s window it sees at most calls × (1 + ratio) + floor × seconds,
// seconds being the span of the retries rounded up to whole windows. The
// calls that were refused a retry say so (ErrBudgetExhausted), and the
// budget is used (the count is close to the bound, not far under it).
func TestBudgetCapsRetriesInOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			calls = 1000
			ratio = 0.2
			floor = 10.0
		)
		window := 10 * time.Second
		r, err := retry.New(retry.Config{
			MaxAttempts:     5,
			InitialInterval: 100 * time.Millisecond,
			NoJitter:        true,
			Budget:          &retry.Budget{Ratio: ratio, MinPerSecond: floor, Window: window},
		})
		require.NoError(t, err)
		outage := errors.New("503")
		var attempts atomic.Int64
		var lastAttempt atomic.Int64
		start := time.Now()
		fail := func(context.Context) (int, error) {
			attempts.Add(1)
			lastAttempt.Store(int64(time.Since(start)))
			return 0, outage
		}
		var refused, exhausted atomic.Int64
		var wg sync.WaitGroup
		for range calls {
			wg.Go(func() {
				_, err := retry.Do(t.Context(), r, fail)
				require.ErrorIs(t, err, outage)
				switch {
				case errors.Is(err, retry.ErrBudgetExhausted):
					refused.Add(1)
				case errors.Is(err, retry.ErrExhausted):
					exhausted.Add(1)
				default:
					t.Errorf("unexpected reason: %v", err)
				}
			})
			time.Sleep(10 * time.Millisecond)
		}
		wg.Wait()

		span := time.Duration(lastAttempt.Load())
		windows := math.Ceil(float64(span) / float64(window))
		bound := calls*(1+ratio) + floor*window.Seconds()*windows
		got := attempts.Load()
		t.Logf("attempts %d, bound %.0f, span %v, refused %d, exhausted %d", got, bound, span, refused.Load(), exhausted.Load())
		assert.LessOrEqual(t, float64(got), bound)
		assert.Greater(t, float64(got), 0.9*float64(calls)*(1+ratio), "the budget's ratio is used")
		assert.Positive(t, refused.Load())
		assert.Equal(t, int64(calls), refused.Load()+exhausted.Load())

		st, ok := r.Budget()
		require.True(t, ok)
		assert.Equal(t, int64(calls), st.Calls)
		assert.Equal(t, refused.Load(), st.Refused)
	})
}

// TestBudgetFloorAloneAllowsRetries: with few calls, the floor lets
// retries through (MinPerSecond × Window of them per window, plus the
// ratio's share of the calls: 3 + 0.01 × calls, so 4 retries), then
// refuses; once the window has passed, retries are allowed again.
func TestBudgetFloorAloneAllowsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := retry.New(retry.Config{
			MaxAttempts: 2,
			NoWait:      true,
			Budget:      &retry.Budget{Ratio: 0.01, MinPerSecond: 1, Window: 3 * time.Second},
		})
		require.NoError(t, err)
		var attempts int
		fail := func(context.Context) (int, error) { attempts++; return 0, errors.New("boom") }
		for i := range 4 {
			_, err := retry.Do(t.Context(), r, fail)
			assert.ErrorIs(t, err, retry.ErrExhausted, "call %d is retried", i)
		}
		_, err = retry.Do(t.Context(), r, fail)
		assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
		assert.Contains(t, err.Error(), "retry budget exhausted")
		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 1, re.Attempts)
		assert.Equal(t, 4*2+1, attempts)

		time.Sleep(3 * time.Second)
		_, err = retry.Do(t.Context(), r, fail)
		assert.ErrorIs(t, err, retry.ErrExhausted, "a new window has a new floor")
	})
}

// TestBudgetConfigErrors: each bad field is an error naming it.
func TestBudgetConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		b     retry.Budget
		field string
	}{
		{retry.Budget{Ratio: -1}, "Budget.Ratio"},
		{retry.Budget{Ratio: math.NaN()}, "Budget.Ratio"},
		{retry.Budget{Ratio: math.Inf(1)}, "Budget.Ratio"},
		{retry.Budget{MinPerSecond: -0.5}, "Budget.MinPerSecond"},
		{retry.Budget{MinPerSecond: math.Inf(1)}, "Budget.MinPerSecond"},
		{retry.Budget{Window: time.Millisecond}, "Budget.Window"},
		{retry.Budget{Window: -time.Second}, "Budget.Window"},
	} {
		_, err := retry.New(retry.Config{Budget: &tc.b})
		assert.ErrorIs(t, err, retry.ErrInvalidConfig, tc.field)
		assert.ErrorContains(t, err, tc.field)
	}
	_, err := retry.New(retry.Config{Budget: &retry.Budget{}})
	assert.NoError(t, err, "the zero Budget means the defaults")
	_, ok := (&retry.Retrier{}).Budget()
	assert.False(t, ok)
}

// TestBudgetWindowSlides: calls older than the window no longer pay for
// retries. 100 successful calls, then, 25s later (the window is 10s),
// failing calls: only the floor (1) and the ratio of the new calls pay
// for retries, so some of 5 failing calls are refused — all 5 would be
// retried if the 100 old calls still counted (0.5 × 100 = 50 retries).
func TestBudgetWindowSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := retry.New(retry.Config{
			MaxAttempts: 2,
			NoWait:      true,
			Budget:      &retry.Budget{Ratio: 0.5, MinPerSecond: 0.1, Window: 10 * time.Second},
		})
		require.NoError(t, err)
		ok := func(context.Context) (int, error) { return 1, nil }
		fail := func(context.Context) (int, error) { return 0, errors.New("boom") }
		for range 100 {
			_, err := retry.Do(t.Context(), r, ok)
			require.NoError(t, err)
		}
		_, err = retry.Do(t.Context(), r, fail)
		assert.ErrorIs(t, err, retry.ErrExhausted, "within the first window the 100 calls count")

		time.Sleep(25 * time.Second)
		var refused int
		for range 5 {
			_, err := retry.Do(t.Context(), r, fail)
			if errors.Is(err, retry.ErrBudgetExhausted) {
				refused++
			}
		}
		assert.Equal(t, 2, refused, "1 + 0.5 × calls since the first retry of the window: the 3rd and 5th are refused")
	})
}

// TestReconfigureKeepsBudget: a Retrier reconfigured with the same Budget
// (here with another MaxAttempts) shares the spent budget: the next
// failing call is refused its retry, as it would have been; another
// Budget starts afresh. A nil Retrier reconfigures as New.
func TestReconfigureKeepsBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := retry.Budget{Ratio: 0.01, MinPerSecond: 1, Window: 3 * time.Second}
		r, err := retry.New(retry.Config{MaxAttempts: 2, NoWait: true, Budget: &budget})
		require.NoError(t, err)
		fail := func(context.Context) (int, error) { return 0, errors.New("boom") }
		for range 4 {
			_, err := retry.Do(t.Context(), r, fail)
			require.ErrorIs(t, err, retry.ErrExhausted)
		}

		same := budget // a copy: equal values, another pointer
		r2, err := r.Reconfigure(retry.Config{MaxAttempts: 3, NoWait: true, Budget: &same})
		require.NoError(t, err)
		_, err = retry.Do(t.Context(), r2, fail)
		assert.ErrorIs(t, err, retry.ErrBudgetExhausted, "the same budget, still spent")
		st, _ := r2.Budget()
		assert.Equal(t, int64(5), st.Calls)

		other := budget
		other.MinPerSecond = 2
		r3, err := r2.Reconfigure(retry.Config{MaxAttempts: 2, NoWait: true, Budget: &other})
		require.NoError(t, err)
		_, err = retry.Do(t.Context(), r3, fail)
		assert.ErrorIs(t, err, retry.ErrExhausted, "another budget starts afresh")

		var none *retry.Retrier
		r4, err := none.Reconfigure(retry.Config{MaxAttempts: 2})
		require.NoError(t, err)
		assert.NotNil(t, r4)
		_, err = r.Reconfigure(retry.Config{MaxAttempts: -1})
		assert.ErrorIs(t, err, retry.ErrInvalidConfig)
	})
}
