package dashboard

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
)

// Snapshot is what the page shows at one moment, as served by GET
// snapshot.json and pushed on the event stream (JSON names in the field
// tags; durations are integer nanoseconds, times RFC 3339).
type Snapshot struct {
	// Time is when the snapshot was taken, in UTC, like every time of a
	// Snapshot (the server's clock: compare NextProbe with it, not with
	// the reader's clock).
	Time time.Time `json:"time"`
	// Executors is every executor of the Stack, by name.
	Executors []Executor `json:"executors"`
	// Events is the latest events of every executor, newest first, at
	// most Config.Events of them (request:success is not kept; state
	// changes stay while other events come: see Config.Events).
	Events []Event `json:"events"`
}

// Executor is the state of one executor in a [Snapshot]. The breaker
// fields are zero when the executor has no breaker (Breaker false); the
// counters are totals since the breaker was made. The load layers
// (Bulkhead, RateLimit, RetryBudget) are nil when the executor does not
// have them.
type Executor struct {
	// Name is the executor's name.
	Name string `json:"name"`
	// Breaker reports whether the executor has a circuit breaker.
	Breaker bool `json:"breaker"`
	// State is the circuit's state: "CLOSED", "OPEN" or "HALF_OPEN";
	// empty without a breaker.
	State string `json:"state,omitempty"`
	// Forced reports whether an operator holds the circuit open
	// (ForceOpen) until a Reset.
	Forced bool `json:"forced,omitempty"`
	// SuccessRate is Successes / (Successes + Failures), from 0 to 1; nil
	// until a call counted either way.
	SuccessRate *float64 `json:"successRate"`
	// Calls is the number of finished calls through the breaker,
	// rejections included.
	Calls int64 `json:"calls"`
	// Successes and Failures are the calls that counted for and against
	// the circuit.
	Successes int64 `json:"successes"`
	Failures  int64 `json:"failures"`
	// Rejections is the calls refused without running (circuit open, too
	// many probes).
	Rejections int64 `json:"rejections"`
	// TimesOpened is how many times the circuit opened.
	TimesOpened int64 `json:"timesOpened"`
	// MeanLatency is the mean duration of the measured calls (see
	// breaker.Stats.MeanLatency); 0 if none was measured.
	MeanLatency time.Duration `json:"meanLatencyNs"`
	// NextProbe is when the next call will be let through as a probe
	// while the circuit is OPEN and not forced; zero (omitted) otherwise.
	NextProbe time.Time `json:"nextProbe,omitzero"`
	// Fallback reports whether the executor has a fallback cache.
	Fallback bool `json:"fallback"`
	// FromCache is how many failed calls were answered from the fallback
	// cache.
	FromCache int64 `json:"fromCache"`
	// Replays is how many calls were answered with a stored idempotent
	// result instead of running again.
	Replays int64 `json:"replays"`
	// Bulkhead is the executor's bulkhead (pipeline.Config.Bulkhead): its
	// slots in use, its queue and the calls it refused; nil (omitted)
	// when the executor has none.
	Bulkhead *BulkheadStats `json:"bulkhead,omitempty"`
	// RateLimit is the executor's rate limiter (pipeline.Config.RateLimit):
	// the calls it refused or delayed and its pause; nil (omitted) when
	// the executor has none.
	RateLimit *RateLimitStats `json:"rateLimit,omitempty"`
	// RetryBudget is the executor's retry budget (retry.Config.Budget):
	// the retries it let through and refused; nil (omitted) when the
	// executor has no retry layer or its retry has no budget.
	RetryBudget *RetryBudgetStats `json:"retryBudget,omitempty"`
}

// Event is one event of a [Snapshot]: a bulwark.Event in plain fields.
// The idempotency key of idempotency events is left out (callers may
// use request data as keys).
type Event struct {
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Executor is the executor it belongs to.
	Executor string `json:"executor"`
	// Kind is the event's name, such as "circuit:opened".
	Kind string `json:"kind"`
	// Error is the error's message, if the event carries one.
	Error string `json:"error,omitempty"`
	// Duration is the event's duration (see bulwark.Event.Duration for
	// what it measures per kind); 0 if none.
	Duration time.Duration `json:"durationNs,omitempty"`
	// Attempt is the attempt number of retry and rollback events.
	Attempt int `json:"attempt,omitempty"`
	// From and To are the states of a circuit change.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Step is the compensation's name of rollback events.
	Step string `json:"step,omitempty"`
	// Summary describes the event in one line, as the page shows it.
	Summary string `json:"summary"`
}

// Snapshot returns the current state of every executor and the latest
// events. It is safe for concurrent use, also after Close (then with the
// events seen before Close).
func (d *Dashboard) Snapshot() Snapshot {
	stats := d.stack.Stats()
	snap := Snapshot{
		Time:      time.Now().UTC(),
		Executors: make([]Executor, 0, len(stats)),
	}
	for _, name := range slices.Sorted(maps.Keys(stats)) {
		st := stats[name]
		ex := Executor{
			Name: name, Replays: st.Replays,
			Bulkhead:    bulkheadStats(st.Bulkhead),
			RateLimit:   rateLimitStats(st.RateLimit),
			RetryBudget: retryBudgetStats(st.RetryBudget),
		}
		if b := st.Breaker; b != nil {
			ex.Breaker = true
			ex.State = b.State.String()
			ex.Forced = b.Forced
			if n := b.Successes + b.Failures; n > 0 {
				rate := float64(b.Successes) / float64(n)
				ex.SuccessRate = &rate
			}
			ex.Calls, ex.Successes, ex.Failures = b.Total, b.Successes, b.Failures
			ex.Rejections, ex.TimesOpened = b.Rejections, b.TimesOpened
			ex.MeanLatency = b.MeanLatency
			if b.State == breaker.Open && !b.Forced {
				ex.NextProbe = b.NextAttempt.UTC()
			}
		}
		if f := st.Fallback; f != nil {
			ex.Fallback = true
			ex.FromCache = int64(f.Hits)
		}
		snap.Executors = append(snap.Executors, ex)
	}
	evs := d.ring.latest()
	snap.Events = make([]Event, len(evs))
	for i, ev := range evs {
		snap.Events[i] = event(ev)
	}
	return snap
}

func event(ev bulwark.Event) Event {
	out := Event{
		Time:     ev.Time.UTC(),
		Executor: ev.Executor,
		Kind:     string(ev.Kind),
		Duration: ev.Duration,
		Attempt:  ev.Attempt,
		From:     ev.From,
		To:       ev.To,
		Step:     ev.Step,
	}
	if ev.Err != nil {
		out.Error = ev.Err.Error()
	}
	out.Summary = summary(out)
	if _, ok := ev.Detail.(forced); ok {
		out.Summary += " (forced open by an operator)"
	}
	return out
}

// summary describes ev in one line.
func summary(ev Event) string {
	var parts []string
	switch bulwark.EventKind(ev.Kind) {
	case bulwark.CircuitOpened, bulwark.CircuitHalfOpen, bulwark.CircuitClosed:
		parts = append(parts, ev.From+" → "+ev.To)
	case bulwark.RequestFailure:
		if ev.Duration > 0 {
			parts = append(parts, "after "+formatLatency(ev.Duration))
		}
	case bulwark.RetryAttempt:
		parts = append(parts, fmt.Sprintf("attempt %d failed, next in %s", ev.Attempt, formatLatency(ev.Duration)))
	case bulwark.RetryExhausted:
		if ev.Error == "" {
			parts = append(parts, fmt.Sprintf("gave up after %d attempts", ev.Attempt))
		}
	case bulwark.FallbackUsed:
		if ev.Duration > 0 {
			parts = append(parts, "served a cached value "+formatLatency(ev.Duration)+" old")
		} else {
			parts = append(parts, "served a cached value")
		}
	case bulwark.BulkheadRejected:
		if ev.Duration > 0 {
			parts = append(parts, "waited "+formatLatency(ev.Duration))
		}
	case bulwark.RateLimitRejected:
		if ev.Duration > 0 {
			parts = append(parts, "needed a wait of "+formatLatency(ev.Duration))
		}
	case bulwark.RateLimitPaused:
		parts = append(parts, "paused for "+formatLatency(ev.Duration))
	case bulwark.IdempotencyReplayed:
		parts = append(parts, "returned the stored result")
	case bulwark.RollbackCompensated, bulwark.RollbackFailed:
		parts = append(parts, fmt.Sprintf("%q in %s", ev.Step, formatLatency(ev.Duration)))
	}
	if ev.Error != "" {
		parts = append(parts, ev.Error)
	}
	return strings.Join(parts, ": ")
}

// formatLatency formats d for the page: milliseconds with one decimal
// below a second, seconds with one decimal below a minute, whole seconds
// above; "-" for 0. The page's script formats the same way.
func formatLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return fmt.Sprintf("%.0f s", d.Seconds())
	}
}

// serveSnapshot answers GET snapshot.json.
func (d *Dashboard) serveSnapshot(w http.ResponseWriter) {
	body, err := json.Marshal(d.Snapshot())
	if err != nil { // cannot happen: every field marshals
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(append(body, '\n'))
}
