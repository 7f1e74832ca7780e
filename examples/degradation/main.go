// Command degradation saves notes to Notion first and degrades to Trello
// when Notion fails; once Notion's circuit is open the switch is
// immediate, since the open circuit rejects without calling Notion or
// waiting for retries. When both services are down the caller gets an
// error saying why, and once both circuits are open it gets it at once.
//
// Run it with `go run ./examples/degradation`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "degradation:", err)
		os.Exit(1)
	}
}

// store is an in-memory fake of a service that stores notes (Notion pages,
// Trello cards); every request takes latency and fails while down.
type store struct {
	name, kind string
	latency    time.Duration

	mu    sync.Mutex
	down  bool
	notes []string
}

func (s *store) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *store) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.notes)
}

// save returns the call that stores note.
func (s *store) save(note string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		t := time.NewTimer(s.latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			return "", fmt.Errorf("%s: 503 Service Unavailable", s.name)
		}
		s.notes = append(s.notes, note)
		return fmt.Sprintf("%s-%d", s.kind, len(s.notes)), nil
	}
}

// notes saves notes through the stack, Notion first, then Trello.
type notes struct {
	stack          *pipeline.Stack
	notion, trello *store
}

// save returns where note went, or an error naming why neither service
// took it.
func (n *notes) save(ctx context.Context, note string) (id string, why string, err error) {
	first := pipeline.Execute(ctx, n.stack, "notion", n.notion.save(note))
	if first.Err == nil {
		return first.Value, "", nil
	}
	why = explain("notion", first)
	second := pipeline.Execute(ctx, n.stack, "trello", n.trello.save(note))
	if second.Err == nil {
		return second.Value, why, nil
	}
	why += "; " + explain("trello", second)
	return "", why, fmt.Errorf("note not saved: %w; %w", first.Err, second.Err)
}

// explain says what happened to a failed call.
func explain(service string, r pipeline.Result[string]) string {
	if errors.Is(r.Err, bulwark.ErrRejected) {
		return service + "'s circuit is open: not called"
	}
	return fmt.Sprintf("%s failed after %d attempts", service, r.Attempts)
}

func run(w io.Writer) error {
	cfg := pipeline.Reliable()
	cfg.Breaker.FailureThreshold = 2
	cfg.Retry = &retry.Config{MaxAttempts: 2, InitialInterval: 100 * time.Millisecond, NoJitter: true}
	stack, err := pipeline.New(cfg)
	if err != nil {
		return err
	}
	n := &notes{
		stack:  stack,
		notion: &store{name: "notion", kind: "page", latency: 40 * time.Millisecond},
		trello: &store{name: "trello", kind: "card", latency: 30 * time.Millisecond},
	}
	fmt.Fprintf(w, "Each service: its circuit opens after %d failed calls; %d attempts per call, %v apart.\n\n",
		cfg.Breaker.FailureThreshold, cfg.Retry.MaxAttempts, cfg.Retry.InitialInterval)

	ctx := context.Background()
	saved, lost := 0, 0
	save := func(note string) {
		start := time.Now()
		id, why, err := n.save(ctx, note)
		took := time.Since(start).Seconds()
		switch {
		case err != nil:
			lost++
			fmt.Fprintf(w, "  %-19q → ERROR after %.2fs: %s\n      %v\n", note, took, why, err)
		case why != "":
			saved++
			fmt.Fprintf(w, "  %-19q → %s (degraded) after %.2fs: %s\n", note, id, took, why)
		default:
			saved++
			fmt.Fprintf(w, "  %-19q → %s after %.2fs\n", note, id, took)
		}
	}

	fmt.Fprintln(w, "1. Both services up: notes go to Notion.")
	save("standup notes")

	fmt.Fprintln(w, "\n2. Notion goes down: notes go to Trello; once Notion's circuit is open, without trying Notion.")
	n.notion.setDown(true)
	save("retro actions")
	save("release checklist")
	save("oncall handover")

	fmt.Fprintln(w, "\n3. Trello goes down too: the caller gets an error; once both circuits are open, at once.")
	n.trello.setDown(true)
	save("design review")
	save("budget draft")
	save("team offsite")

	fmt.Fprintf(w, "\n%d notes saved (Notion %d, Trello %d), %d refused with an error.\n",
		saved, n.notion.count(), n.trello.count(), lost)
	fmt.Fprintf(w, "Circuits: notion %v, trello %v.\n", stack.Breaker("notion").State(), stack.Breaker("trello").State())
	return nil
}
