// Command monitoring wires a bulwark stack to an alerting function and a
// structured logger: Stack.Subscribe delivers the events of every layer of
// every executor, named by executor, to one listener, which pages on an
// opened circuit and on retries that gave up, and counts the calls answered
// from the fallback cache. The circuit's state changes also go to an
// slog.Logger (Config.Logger).
//
// Run it with `go run ./examples/monitoring`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "monitoring:", err)
		os.Exit(1)
	}
}

// monitor turns the stack's events into alerts and counters. Its listen
// method is called synchronously by every call that emits an event, from
// many goroutines in a real service: it must be safe for concurrent use
// and quick (a real one would hand the alert to a queue).
type monitor struct {
	alert func(msg string) // pages someone

	mu        sync.Mutex
	fallbacks map[string]int // fallback:used, by executor
	retries   map[string]int // retry:attempt, by executor
}

func (m *monitor) listen(e bulwark.Event) {
	switch e.Kind {
	case bulwark.CircuitOpened:
		msg := fmt.Sprintf("[%s] circuit opened (%s → %s)", e.Executor, e.From, e.To)
		if st, ok := e.Detail.(breaker.Stats); ok {
			msg += fmt.Sprintf(" after %d consecutive failures; next probe in %v",
				st.ConsecutiveFailures, st.NextAttempt.Sub(e.Time).Round(time.Second))
		}
		m.alert(msg)
	case bulwark.RetryExhausted:
		last := e.Err
		var re *retry.Error
		if errors.As(e.Err, &re) {
			last = re.Last
		}
		m.alert(fmt.Sprintf("[%s] retries exhausted after %d attempts; last error: %v", e.Executor, e.Attempt, last))
	case bulwark.FallbackUsed:
		m.count(m.fallbacks, e.Executor)
	case bulwark.RetryAttempt:
		m.count(m.retries, e.Executor)
	}
}

func (m *monitor) count(c map[string]int, executor string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c[executor]++
}

// counters formats a counter map in executor order.
func (m *monitor) counters(c map[string]int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := ""
	for _, name := range slices.Sorted(maps.Keys(c)) {
		s += fmt.Sprintf(" %s=%d", name, c[name])
	}
	if s == "" {
		return " none"
	}
	return s
}

// service is an in-memory fake of a remote API that fails while down, and
// fails the next n requests when told to.
type service struct {
	name string

	mu    sync.Mutex
	down  bool
	flaky int
}

func (s *service) set(down bool, flaky int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down, s.flaky = down, flaky
}

func (s *service) call(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.down:
		return "", fmt.Errorf("%s: 503 Service Unavailable", s.name)
	case s.flaky > 0:
		s.flaky--
		return "", fmt.Errorf("%s: 502 Bad Gateway", s.name)
	}
	return s.name + " ok", nil
}

func run(w io.Writer) error {
	// Operators read state changes in the logs; the time attribute is left
	// out to keep the demo's output short.
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))

	cfg := pipeline.Unreliable() // opens after 3 failures; fallback cache
	cfg.Retry = &retry.Config{MaxAttempts: 3, InitialInterval: 50 * time.Millisecond, NoJitter: true}
	cfg.Logger = logger
	stack, err := pipeline.New(cfg)
	if err != nil {
		return err
	}

	var alertMu sync.Mutex
	alerts := 0
	mon := &monitor{
		alert: func(msg string) {
			alertMu.Lock()
			defer alertMu.Unlock()
			alerts++
			fmt.Fprintln(w, "ALERT", msg)
		},
		fallbacks: map[string]int{},
		retries:   map[string]int{},
	}
	defer stack.Subscribe(mon.listen)()

	notion := &service{name: "notion"}
	slack := &service{name: "slack"}
	ctx := context.Background()
	call := func(svc *service, op string) {
		r := pipeline.Execute(ctx, stack, svc.name, svc.call, pipeline.Operation(op))
		how := "live"
		switch {
		case r.Err != nil:
			how = "error: " + r.Err.Error()
		case r.FromCache:
			how = "from cache"
		}
		fmt.Fprintf(w, "%s %s: %s (attempts %d)\n", svc.name, op, how, r.Attempts)
	}

	fmt.Fprintln(w, "1. Healthy traffic: no alerts.")
	call(notion, "get-roadmap")
	call(slack, "post-message")

	fmt.Fprintln(w, "\n2. slack fails once: retried, no alert (retry:attempt is counted).")
	slack.set(false, 1)
	call(slack, "post-message")

	fmt.Fprintln(w, "\n3. notion goes down: each call exhausts its retries (alert); the third opens the circuit (alert).")
	notion.set(true, 0)
	for range 3 {
		call(notion, "get-roadmap")
	}

	fmt.Fprintln(w, "\n4. notion's circuit is open: calls are rejected and answered from the cache; rejections are not retried, so no new alerts.")
	for range 2 {
		call(notion, "get-roadmap")
	}

	fmt.Fprintln(w, "\nMetrics:")
	fmt.Fprintf(w, "  alerts sent:   %d\n", alerts)
	fmt.Fprintf(w, "  fallback:used:%s\n", mon.counters(mon.fallbacks))
	fmt.Fprintf(w, "  retry:attempt:%s\n", mon.counters(mon.retries))
	if alerts != 4 {
		return errors.New("expected 4 alerts: three exhausted retries and one opened circuit")
	}
	return nil
}
