package dashboard

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// BulkheadStats is an executor's bulkhead in a [Snapshot] (from
// pipeline.Stats.Bulkhead): its limits, what it holds now, and its totals
// since it was made.
type BulkheadStats struct {
	// MaxConcurrent is the number of slots: calls (attempts, inside
	// retry) that may be in flight at once.
	MaxConcurrent int `json:"maxConcurrent"`
	// MaxWaiting is how many calls may queue for a slot; 0: no queue, a
	// full bulkhead refuses at once.
	MaxWaiting int `json:"maxWaiting"`
	// InFlight is the number of slots taken now; the bulkhead is full
	// when it equals MaxConcurrent.
	InFlight int `json:"inFlight"`
	// Waiting is the number of calls in the queue now.
	Waiting int `json:"waiting"`
	// Admitted is the number of calls that got a slot, at once or after
	// waiting.
	Admitted int64 `json:"admitted"`
	// Queued is the number of calls that joined the queue.
	Queued int64 `json:"queued"`
	// Rejected is the number of calls refused because the bulkhead was
	// full (bulkhead.ErrFull).
	Rejected int64 `json:"rejected"`
	// Canceled is the number of queued calls whose context ended before
	// they got a slot.
	Canceled int64 `json:"canceled"`
}

// RateLimitStats is an executor's rate limiter in a [Snapshot] (from
// pipeline.Stats.RateLimit): its token bucket and its totals since it was
// made.
type RateLimitStats struct {
	// Rate is the local token bucket's sustained rate, in calls per
	// second, and Burst its size. Both are 0 when the limiter takes its
	// tokens from a Backend (such as a limit shared by many processes),
	// and Rate is 0 when Unlimited.
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
	// Unlimited reports a bucket of rate +Inf: only a pause holds calls.
	// (JSON has no infinity, so Rate cannot say it.)
	Unlimited bool `json:"unlimited,omitempty"`
	// Admitted is the number of calls let through; Delayed those of them
	// that waited for a token or a pause first.
	Admitted int64 `json:"admitted"`
	Delayed  int64 `json:"delayed"`
	// Rejected is the number of calls refused (ratelimit.ErrLimited).
	Rejected int64 `json:"rejected"`
	// Canceled is the number of calls whose context ended before they
	// got their token.
	Canceled int64 `json:"canceled"`
	// Waited is the total time calls spent waiting, admitted or not.
	Waited time.Duration `json:"waitedNs"`
	// PausedUntil is when the current pause (after a Retry-After, or
	// ratelimit.Limiter.PauseFor) ends, in UTC; zero (omitted) when none
	// held as the snapshot was taken.
	PausedUntil time.Time `json:"pausedUntil,omitzero"`
}

// RetryBudgetStats is an executor's retry budget in a [Snapshot] (from
// pipeline.Stats.RetryBudget).
type RetryBudgetStats struct {
	// Calls is the number of calls started since the budget was made.
	Calls int64 `json:"calls"`
	// Retries is the number of retries made within the budget's current
	// window (retry.Budget.Window).
	Retries int64 `json:"retries"`
	// Refused is the number of retries the budget refused since it was
	// made.
	Refused int64 `json:"refused"`
}

func bulkheadStats(b *bulkhead.Stats) *BulkheadStats {
	if b == nil {
		return nil
	}
	return &BulkheadStats{
		MaxConcurrent: b.MaxConcurrent, MaxWaiting: b.MaxWaiting,
		InFlight: b.InFlight, Waiting: b.Waiting,
		Admitted: b.Admitted, Queued: b.Queued, Rejected: b.Rejected, Canceled: b.Canceled,
	}
}

func rateLimitStats(r *ratelimit.Stats) *RateLimitStats {
	if r == nil {
		return nil
	}
	out := &RateLimitStats{
		Rate: r.Rate, Burst: r.Burst,
		Admitted: r.Admitted, Delayed: r.Delayed, Rejected: r.Rejected, Canceled: r.Canceled,
		Waited: r.Waited,
	}
	if math.IsInf(r.Rate, 1) {
		out.Rate, out.Unlimited = 0, true
	}
	if !r.PausedUntil.IsZero() {
		out.PausedUntil = r.PausedUntil.UTC()
	}
	return out
}

func retryBudgetStats(b *retry.BudgetStats) *RetryBudgetStats {
	if b == nil {
		return nil
	}
	return &RetryBudgetStats{Calls: b.Calls, Retries: b.Retries, Refused: b.Refused}
}

// formatLoad describes ex's load layers in one line, as the page's Load
// column shows them, with now the snapshot's time:
//
//	3/10 in flight · 2 waiting · 5 full · 7 limited · paused 3s · budget: 4 refused
//
// The bulkhead's slots in use out of MaxConcurrent, its queue (only if it
// has one), the calls it refused; the calls the rate limiter refused and,
// while a pause holds, the seconds left (rounded up); the retries the
// budget refused. A layer the executor does not have is left out; "-"
// without any. warn reports a full bulkhead or a pause, which the page
// colours as a warning. The page's script formats the same way (page.html,
// load()).
func formatLoad(ex Executor, now time.Time) (text string, warn bool) {
	var parts []string
	if b := ex.Bulkhead; b != nil {
		parts = append(parts, fmt.Sprintf("%d/%d in flight", b.InFlight, b.MaxConcurrent))
		if b.MaxWaiting > 0 {
			parts = append(parts, fmt.Sprintf("%d waiting", b.Waiting))
		}
		parts = append(parts, fmt.Sprintf("%d full", b.Rejected))
		warn = b.InFlight >= b.MaxConcurrent
	}
	if r := ex.RateLimit; r != nil {
		parts = append(parts, fmt.Sprintf("%d limited", r.Rejected))
		if d := r.PausedUntil.Sub(now); !r.PausedUntil.IsZero() && d > 0 {
			parts = append(parts, fmt.Sprintf("paused %.0fs", math.Ceil(d.Seconds())))
			warn = true
		}
	}
	if b := ex.RetryBudget; b != nil {
		parts = append(parts, fmt.Sprintf("budget: %d refused", b.Refused))
	}
	if parts == nil {
		return "-", false
	}
	return strings.Join(parts, " · "), warn
}
