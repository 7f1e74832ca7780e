package pipeline

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/cache"
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
// many failed calls found a value in the fallback cache. A dash marks a
// layer the executor does not have.
func (s *Stack) Summary() string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EXECUTOR\tSTATE\tSUCCESS RATE\tCALLS\tFAILURES\tREJECTIONS\tOPENED\tNEXT ATTEMPT\tFROM CACHE")
	now := time.Now()
	stats := s.Stats()
	for _, name := range s.Executors() {
		st := stats[name]
		state, rate, calls, failures, rejections, opened, next := "-", "-", "-", "-", "-", "-", "-"
		if b := st.Breaker; b != nil {
			state = b.State.String()
			if n := b.Successes + b.Failures; n > 0 {
				rate = fmt.Sprintf("%.1f%%", 100*float64(b.Successes)/float64(n))
			}
			calls = fmt.Sprint(b.Total)
			failures = fmt.Sprint(b.Failures)
			rejections = fmt.Sprint(b.Rejections)
			opened = fmt.Sprint(b.TimesOpened)
			switch {
			case b.Forced:
				next = "forced open"
			case b.State == breaker.Open && !b.NextAttempt.After(now):
				next = "due"
			case b.State == breaker.Open:
				d := b.NextAttempt.Sub(now)
				if d >= time.Second {
					d = d.Round(time.Second)
				}
				next = "in " + d.String()
			}
		}
		fromCache := "-"
		if f := st.Fallback; f != nil {
			fromCache = fmt.Sprint(f.Hits)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			name, state, rate, calls, failures, rejections, opened, next, fromCache)
	}
	tw.Flush()
	return sb.String()
}
