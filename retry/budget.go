package retry

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of a [Budget].
const (
	DefaultBudgetRatio        = 0.2
	DefaultBudgetMinPerSecond = 10
	DefaultBudgetWindow       = 10 * time.Second
)

// ErrBudgetExhausted: the Retrier's retry budget (Config.Budget) was
// spent, so a failed attempt that would otherwise have been retried was
// not.
var ErrBudgetExhausted = errors.New("retry: retry budget exhausted")

// Budget caps the retries a [Retrier] makes across all its calls, so that
// an outage of the service is not multiplied by the retries of every
// caller (a retry storm): over any Window, the Retrier retries at most
// Ratio times the calls it started in that window, plus MinPerSecond per
// second of the window. Once the budget is spent, a failed attempt is not
// retried: Do gives up with an [*Error] whose Reason is
// [ErrBudgetExhausted]. First attempts are never refused.
//
// This is Finagle's RetryBudget (a ratio of requests plus a minimum of
// retries per second, over a time to live), Envoy's retry budgets
// (budget_percent, min_retry_concurrency) and gRPC's retry throttling
// (retryThrottling: a token ratio) in one shape. With the defaults, a
// service that fails every call sees at most 1.2 times the calls plus 10
// retries a second, instead of MaxAttempts times the calls.
//
// Over any run of calls lasting S, the retries made are at most
// Ratio × calls + MinPerSecond × Window × ⌈S/Window⌉.
//
// The zero Budget means the defaults. Negative, NaN or infinite values are
// errors from [New].
type Budget struct {
	// Ratio is the retries allowed per call started within the window:
	// 0.2 lets 20 retries through for every 100 calls. Zero means 0.2.
	Ratio float64

	// MinPerSecond is the floor: retries allowed per second of the window
	// whatever the traffic, so that a service called rarely can still
	// have its calls retried. Zero means 10.
	MinPerSecond float64

	// Window is how far back calls and retries count. Zero means 10s; at
	// least 10ms.
	Window time.Duration
}

// budgetSlots is the number of slots the window is cut into.
const budgetSlots = 10

func (b *Budget) validate(bad func(field, format string, args ...any)) {
	if b.Ratio < 0 || math.IsNaN(b.Ratio) || math.IsInf(b.Ratio, 0) {
		bad("Budget.Ratio", "is %v, must be finite and not negative (0 means %v)", b.Ratio, DefaultBudgetRatio)
	}
	if b.MinPerSecond < 0 || math.IsNaN(b.MinPerSecond) || math.IsInf(b.MinPerSecond, 0) {
		bad("Budget.MinPerSecond", "is %v, must be finite and not negative (0 means %v)", b.MinPerSecond, DefaultBudgetMinPerSecond)
	}
	if b.Window != 0 && b.Window < 10*time.Millisecond {
		bad("Budget.Window", "is %v, must be at least 10ms (0 means %v)", b.Window, DefaultBudgetWindow)
	}
}

// budget is the state of a Retrier's Budget. Every call adds one to calls
// (one atomic add: no clock, no lock). Retries are counted, under mu and
// only on the retry path, in a ring of slots of Window/10; a slot also
// records the calls counter when it was first used, so that the calls
// started within the window are at least counted from there (during the
// first window, from the budget's creation). The count can only be low (calls made before a slot's first retry in a quiet
// window are not counted), which errs on the side of fewer retries.
type budget struct {
	calls   atomic.Int64
	refused atomic.Int64

	cfg   Budget // as given to New, for Reconfigure
	ratio float64
	floor float64 // retries the floor allows per window
	slot  time.Duration
	epoch time.Time

	mu    sync.Mutex
	slots [budgetSlots]budgetSlot
}

type budgetSlot struct {
	index   int64 // time since epoch / slot; -1: unused
	calls   int64 // the calls counter when the slot was first used
	retries int64
}

func newBudget(c *Budget) *budget {
	b := &budget{cfg: *c, ratio: c.Ratio, floor: c.MinPerSecond, epoch: time.Now()}
	if b.ratio == 0 {
		b.ratio = DefaultBudgetRatio
	}
	if b.floor == 0 {
		b.floor = DefaultBudgetMinPerSecond
	}
	window := c.Window
	if window == 0 {
		window = DefaultBudgetWindow
	}
	b.floor *= window.Seconds()
	b.slot = window / budgetSlots
	for i := range b.slots {
		b.slots[i].index = -1
	}
	return b
}

// withdraw takes one retry from the budget at now and reports whether
// there was one to take.
func (b *budget) withdraw(now time.Time) bool {
	k := int64(now.Sub(b.epoch) / b.slot)
	b.mu.Lock()
	defer b.mu.Unlock()
	calls := b.calls.Load()
	cur := &b.slots[k%budgetSlots]
	if cur.index != k {
		*cur = budgetSlot{index: k, calls: calls}
	}
	first, retries := cur.calls, int64(0)
	if k < budgetSlots {
		first = 0 // the window reaches back to the budget's creation: every call is in it
	}
	for i := range b.slots {
		s := &b.slots[i]
		if s.index >= 0 && s.index > k-budgetSlots && s.index <= k {
			retries += s.retries
			first = min(first, s.calls)
		}
	}
	if float64(retries) >= b.ratio*float64(calls-first)+b.floor {
		b.refused.Add(1)
		return false
	}
	cur.retries++
	return true
}

// BudgetStats is a snapshot of a Retrier's retry budget.
type BudgetStats struct {
	// Calls is the number of calls started since the Retrier was made.
	Calls int64
	// Retries is the number of retries made within the current window.
	Retries int64
	// Refused is the number of retries refused since the Retrier was
	// made.
	Refused int64
}

// Budget returns a snapshot of r's retry budget, and false when r has
// none (Config.Budget is nil). Safe for concurrent use.
func (r *Retrier) Budget() (BudgetStats, bool) {
	if r == nil || r.budget == nil {
		return BudgetStats{}, false
	}
	return r.budget.stats(time.Now()), true
}

func (b *budget) stats(now time.Time) BudgetStats {
	k := int64(now.Sub(b.epoch) / b.slot)
	st := BudgetStats{Calls: b.calls.Load(), Refused: b.refused.Load()}
	b.mu.Lock()
	for i := range b.slots {
		if s := &b.slots[i]; s.index >= 0 && s.index > k-budgetSlots && s.index <= k {
			st.Retries += s.retries
		}
	}
	b.mu.Unlock()
	return st
}
