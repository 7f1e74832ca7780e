package pipeline

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// Stats is a snapshot of one executor's layers.
type Stats struct {
	// Breaker is the circuit breaker's state and counters; nil when the
	// executor has no breaker.
	Breaker *breaker.Stats
	// Fallback is the fallback cache's counters (a hit is a failed call
	// that found a value to serve); nil when the executor has no
	// fallback.
	Fallback *cache.Stats
	// Bulkhead is the bulkhead's limits and counters (InFlight, Waiting,
	// Rejected, ...); nil when the executor has no bulkhead.
	Bulkhead *bulkhead.Stats
	// RateLimit is the rate limiter's counters (Rejected, Delayed,
	// PausedUntil, ...); nil when the executor has no rate limiter.
	RateLimit *ratelimit.Stats
	// RetryBudget is the retry budget's counters (Calls, Retries within
	// the window, Refused); nil when the executor has no retry layer or
	// its Retry config has no Budget.
	RetryBudget *retry.BudgetStats
	// Replays counts the calls answered with a stored idempotent result
	// instead of running again (idempotency:replayed events) since the
	// executor was made; 0 when it has no idempotency layer.
	Replays int64
}

// Stats returns a snapshot of every executor's layers, by executor name.
func (s *Stack) Stats() map[string]Stats {
	out := make(map[string]Stats)
	if s == nil {
		return out
	}
	if m := s.execs.Load(); m != nil {
		for name, e := range *m {
			out[name] = e.stats()
		}
	}
	return out
}

// Summary returns the executors' statistics as an aligned text table, one
// row per executor in name order: circuit state, success rate (successes
// among the calls that counted either way), calls, failures, rejections,
// times opened, when the next probe is let through while OPEN, and how
// many failed calls found a value in the fallback cache. When any
// executor has a bulkhead or a rate limiter, five more columns follow:
// the bulkhead's slots in use out of its MaxConcurrent (IN FLIGHT), the
// calls in its queue (WAITING), the calls it refused (FULL), the calls
// the rate limiter refused (LIMITED), and how long its current pause
// (after a Retry-After) still holds (PAUSED). When any executor has an
// idempotency layer, a REPLAYED column (after FROM CACHE) counts the calls
// answered with a stored result instead of running ([Stats].Replays):
// those reach no other layer, so CALLS does not count them. A dash marks a
// layer the executor does not have.
//
// SUCCESS RATE is successes over successes plus failures: the calls that
// reached the service. Rejections (the breaker's, while OPEN) are in
// CALLS and REJECTIONS but not in the rate, so 7 successes, 5 failures
// and 6 rejections read 58.3% of 18 calls.
func (s *Stack) Summary() string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	now := time.Now()
	stats := s.Stats()
	load, idem := false, s.anyIdempotency()
	for _, st := range stats {
		load = load || st.Bulkhead != nil || st.RateLimit != nil
	}
	fmt.Fprint(tw, "EXECUTOR\tSTATE\tSUCCESS RATE\tCALLS\tFAILURES\tREJECTIONS\tOPENED\tNEXT ATTEMPT\tFROM CACHE")
	if idem {
		fmt.Fprint(tw, "\tREPLAYED")
	}
	if load {
		fmt.Fprint(tw, "\tIN FLIGHT\tWAITING\tFULL\tLIMITED\tPAUSED")
	}
	fmt.Fprintln(tw)
	for _, name := range s.Executors() {
		st := stats[name]
		fmt.Fprint(tw, name, "\t", breakerColumns(st.Breaker, now), "\t", fromCacheColumn(st.Fallback))
		if idem {
			fmt.Fprint(tw, "\t", replayedColumn(s.lookup(name), st.Replays))
		}
		if load {
			fmt.Fprint(tw, "\t", bulkheadColumns(st.Bulkhead), "\t", rateLimitColumns(st.RateLimit, now))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return sb.String()
}

// breakerColumns are the Summary's breaker columns, tab-separated.
func breakerColumns(b *breaker.Stats, now time.Time) string {
	if b == nil {
		return "-\t-\t-\t-\t-\t-\t-"
	}
	rate, next := "-", "-"
	if n := b.Successes + b.Failures; n > 0 {
		rate = fmt.Sprintf("%.1f%%", 100*float64(b.Successes)/float64(n))
	}
	switch {
	case b.Forced:
		next = "forced open"
	case b.State == breaker.Open && !b.NextAttempt.After(now):
		next = "due"
	case b.State == breaker.Open:
		next = "in " + roundedUntil(b.NextAttempt, now)
	}
	return fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t%d\t%s",
		b.State, rate, b.Total, b.Failures, b.Rejections, b.TimesOpened, next)
}

// anyIdempotency reports whether an executor has an idempotency layer:
// the Summary then has a REPLAYED column.
func (s *Stack) anyIdempotency() bool {
	if m := s.execs.Load(); m != nil {
		for _, e := range *m {
			if e.layers.Load().idem != nil {
				return true
			}
		}
	}
	return false
}

// replayedColumn is the Summary's REPLAYED column for executor e.
func replayedColumn(e *executor, replays int64) string {
	if e == nil || e.layers.Load().idem == nil {
		return "-"
	}
	return fmt.Sprint(replays)
}

func fromCacheColumn(f *cache.Stats) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprint(f.Hits)
}

// bulkheadColumns are the Summary's IN FLIGHT, WAITING and FULL columns.
func bulkheadColumns(b *bulkhead.Stats) string {
	if b == nil {
		return "-\t-\t-"
	}
	return fmt.Sprintf("%d/%d\t%d\t%d", b.InFlight, b.MaxConcurrent, b.Waiting, b.Rejected)
}

// rateLimitColumns are the Summary's LIMITED and PAUSED columns.
func rateLimitColumns(r *ratelimit.Stats, now time.Time) string {
	if r == nil {
		return "-\t-"
	}
	paused := "no"
	if r.PausedUntil.After(now) {
		paused = roundedUntil(r.PausedUntil, now)
	}
	return fmt.Sprintf("%d\t%s", r.Rejected, paused)
}

// roundedUntil is the time from now to t, rounded to the second from a
// second up.
func roundedUntil(t, now time.Time) string {
	d := t.Sub(now)
	if d >= time.Second {
		d = d.Round(time.Second)
	}
	return d.String()
}
