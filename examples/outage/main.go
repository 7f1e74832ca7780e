// Command outage plays a service outage through a bulwark stack and prints
// what happens, call by call, as a Time / State / Event table: a fake
// Notion API works, then goes down; its failures open the circuit; calls
// the circuit rejects are answered from the fallback cache; after the reset
// timeout the circuit half-opens, and two successful probes close it.
//
// The durations are shortened so that the whole story takes about five
// seconds of real time; the Time column is the real time elapsed since the
// start.
//
// Run it with `go run ./examples/outage` (or `make demo`).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "outage:", err)
		os.Exit(1)
	}
}

// The demo's timeline. A call goes out every interval; the service is down
// for calls downFrom up to (not including) upFrom.
const (
	interval = 250 * time.Millisecond
	calls    = 18
	downFrom = 4  // at 1.00s
	upFrom   = 12 // at 3.00s
	latency  = 50 * time.Millisecond
)

// notion is an in-memory fake of the Notion API: each read of the roadmap
// page takes latency and returns the page's current revision, unless the
// service is down.
type notion struct {
	mu   sync.Mutex
	down bool
	rev  int
}

var errUnavailable = errors.New("notion: 503 Service Unavailable")

func (n *notion) setDown(down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down = down
}

func (n *notion) getRoadmap(ctx context.Context) (string, error) {
	t := time.NewTimer(latency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return "", errUnavailable
	}
	n.rev++
	return fmt.Sprintf("roadmap rev %d", n.rev), nil
}

// recorder keeps the events of the call in progress.
type recorder struct {
	mu     sync.Mutex
	events []bulwark.Event
}

func (r *recorder) listen(e bulwark.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// take returns the events recorded since the last take.
func (r *recorder) take() []bulwark.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func run(w io.Writer) error {
	// The breaker's shortened settings, and the production values they
	// stand for (the breaker's defaults). Retry is off, so each row of the
	// table is one attempt.
	breakerConfig := breaker.Config{
		FailureThreshold: 5,                       // production: 5
		FailureWindow:    6 * time.Second,         // production: 1m
		ResetTimeout:     1500 * time.Millisecond, // production: 30s
		SuccessThreshold: 2,                       // production: 2
	}
	cfg := pipeline.Config{
		Fallback: &pipeline.FallbackConfig{},
		Breaker:  &breakerConfig,
	}
	stack, err := pipeline.New(cfg)
	if err != nil {
		return err
	}
	var rec recorder
	defer stack.Subscribe(rec.listen)()
	svc := &notion{}

	fmt.Fprintln(w, "A Notion outage, seen through a bulwark stack (fallback cache → circuit breaker → call).")
	fmt.Fprintf(w, "Durations are shortened for the demo: a call every %v, the circuit opens after %d failures within %v\n",
		interval, breakerConfig.FailureThreshold, breakerConfig.FailureWindow)
	fmt.Fprintf(w, "and probes again after %v, closing after %d successful probes.\n",
		breakerConfig.ResetTimeout, breakerConfig.SuccessThreshold)
	fmt.Fprintln(w, "Production values: 5 failures within 1m, reset timeout 30s, 2 successes (the breaker's defaults).")
	fmt.Fprintln(w)
	row := func(t, state, events, result string) {
		fmt.Fprintf(w, "%-7s  %-9s  %-46s  %s\n", t, state, events, result)
	}
	fmt.Fprintf(w, "A call is made every %v; TIME is when its answer arrived (real time since the start), STATE the\n", interval)
	fmt.Fprintln(w, "circuit's state then. A cached value's age is measured at that time too.")
	fmt.Fprintln(w)
	row("TIME", "STATE", "EVENT", "RESULT")

	var live, cached, failed int
	start := time.Now()
	for i := range calls {
		// Keep to the schedule whatever the calls took.
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		at := elapsed(start)
		switch i {
		case downFrom:
			svc.setDown(true)
			fmt.Fprintf(w, "%-7s  -- notion goes down: every request now fails with 503 --\n", at)
		case upFrom:
			svc.setDown(false)
			fmt.Fprintf(w, "%-7s  -- notion is back; the circuit does not know yet --\n", at)
		}

		r := pipeline.Execute(context.Background(), stack, "notion", svc.getRoadmap, pipeline.Operation("get-roadmap"))
		// The row shows when the answer arrived: the cache measures a
		// value's age when it serves it, so time minus age is when the
		// value was stored, the same on every cached row.
		at = elapsed(start)
		events := rec.take()
		var names []string
		var age time.Duration
		for _, e := range events {
			names = append(names, e.Kind.String())
			if e.Kind == bulwark.FallbackUsed {
				age = e.Duration
			}
		}
		var result string
		switch {
		case r.Err != nil:
			failed++
			result = "error: " + r.Err.Error()
		case r.FromCache:
			cached++
			result = fmt.Sprintf("%s (cached, %.2fs old)", r.Value, age.Seconds())
		default:
			live++
			result = r.Value + " (live)"
		}
		row(at, stack.Breaker("notion").State().String(), strings.Join(names, ", "), result)
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "%d calls: %d answered live, %d from the fallback cache, %d failed.\n", calls, live, cached, failed)
	fmt.Fprintln(w)
	fmt.Fprint(w, stack.Summary())
	if b := stack.Stats()["notion"].Breaker; b != nil {
		fmt.Fprintf(w, "(SUCCESS RATE counts the %d calls that reached notion: %d succeeded; the %d it rejected while OPEN are not in it.)\n",
			b.Successes+b.Failures, b.Successes, b.Rejections)
	}
	if failed > 0 {
		return fmt.Errorf("%d calls failed: the fallback should have answered them", failed)
	}
	return nil
}

// elapsed formats the real time since start.
func elapsed(start time.Time) string {
	return fmt.Sprintf("%.2fs", time.Since(start).Seconds())
}
