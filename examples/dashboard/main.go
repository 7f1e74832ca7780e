// Command dashboard shows what an operator sees of a Stack. By default it
// serves the live status page (package dashboard) on a loopback port,
// prints its URL, and sends traffic to several executors while a
// simulated outage comes and goes: open the URL and watch trello's
// circuit turn OPEN, probe, and close again, without reloading, and the
// Load column count the calls of slack's bursts that its bulkhead
// refuses. With
// -report it instead sends ten rounds of traffic and prints each
// executor's Stats, the events a subscriber counted, and the Summary
// table.
//
//	go run ./examples/dashboard                      # serve until interrupted
//	go run ./examples/dashboard -addr 127.0.0.1:8080 -duration 5m
//	go run ./examples/dashboard -report              # the text report
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address of the page (port 0: any free port)")
	duration := flag.Duration("duration", 0, "stop serving after this long (0: run until interrupted)")
	report := flag.Bool("report", false, "print the text report of ten rounds of traffic instead of serving the page")
	flag.Parse()

	var err error
	if *report {
		err = run(os.Stdout)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		err = serve(ctx, os.Stdout, *addr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

// service is an in-memory fake: each request takes latency; it fails
// while down, and every failEvery-th request fails (0: never).
type service struct {
	name      string
	latency   time.Duration
	failEvery int

	mu       sync.Mutex
	down     bool
	requests int
}

func (s *service) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *service) call(ctx context.Context) (string, error) {
	t := time.NewTimer(s.latency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.down || (s.failEvery > 0 && s.requests%s.failEvery == 0) {
		return "", fmt.Errorf("%s: 503 Service Unavailable", s.name)
	}
	return fmt.Sprintf("%s response %d", s.name, s.requests), nil
}

// counter counts events by executor and kind; safe for concurrent use.
type counter struct {
	mu sync.Mutex
	n  map[string]map[bulwark.EventKind]int
}

func (c *counter) listen(e bulwark.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[e.Executor] == nil {
		c.n[e.Executor] = map[bulwark.EventKind]int{}
	}
	c.n[e.Executor][e.Kind]++
}

func (c *counter) String(executor string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c.n[executor])) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c.n[executor][k]))
	}
	if parts == nil {
		return "none"
	}
	return strings.Join(parts, " ")
}

// scene is what both modes run: a Stack of five executors and the fake
// services behind them.
type scene struct {
	stack    *pipeline.Stack
	services map[string]*service
	traffic  []string // one call to each per round: notion gets the most
}

// newScene builds the scene. trelloReset, if not 0, replaces the reset
// timeout of trello's breaker (the Unreliable preset's 60s), so that the
// live page shows a probe soon after an outage ends.
func newScene(trelloReset time.Duration) (*scene, error) {
	fastRetry := &retry.Config{MaxAttempts: 3, InitialInterval: 20 * time.Millisecond, NoJitter: true}
	reliable := pipeline.Reliable()
	reliable.Retry = fastRetry
	stack, err := pipeline.New(reliable) // notion: the defaults
	if err != nil {
		return nil, err
	}
	unreliable := pipeline.Unreliable()
	unreliable.Retry = fastRetry
	trello := unreliable
	if trelloReset != 0 {
		b := *unreliable.Breaker
		b.ResetTimeout = trelloReset
		trello.Breaker = &b
	}
	critical := pipeline.Critical()
	critical.Retry = nil
	// slack takes at most 4 attempts at once and 20 a second: the page's
	// Load column shows its bulkhead refusing the excess of a burst.
	slack := unreliable
	slack.Bulkhead = &bulkhead.Config{MaxConcurrent: 4}
	slack.RateLimit = &ratelimit.Config{Rate: 20, Burst: 10}
	for name, cfg := range map[string]pipeline.Config{
		"slack":    slack,
		"trello":   trello,
		"payments": critical,
		"github":   {}, // no layers: calls go straight through
	} {
		if err := stack.Configure(name, cfg); err != nil {
			return nil, err
		}
	}
	return &scene{
		stack: stack,
		services: map[string]*service{
			"notion":   {name: "notion", latency: 30 * time.Millisecond},
			"slack":    {name: "slack", latency: 10 * time.Millisecond, failEvery: 4},
			"trello":   {name: "trello", latency: 20 * time.Millisecond},
			"payments": {name: "payments", latency: 40 * time.Millisecond},
			"github":   {name: "github", latency: 15 * time.Millisecond},
		},
		traffic: []string{"notion", "notion", "notion", "slack", "slack", "trello", "payments", "github"},
	}, nil
}

// round sends one call to each executor of the traffic.
func (sc *scene) round(ctx context.Context) {
	for _, name := range sc.traffic {
		pipeline.Execute(ctx, sc.stack, name, sc.services[name].call, pipeline.Operation("list"))
	}
}

// run sends ten rounds of traffic and prints the report.
func run(w io.Writer) error {
	sc, err := newScene(0)
	if err != nil {
		return err
	}
	stack, services := sc.stack, sc.services
	events := &counter{n: map[string]map[bulwark.EventKind]int{}}
	defer stack.Subscribe(events.listen)()

	fmt.Fprintln(w, "Sending 10 rounds of traffic: notion is healthy, slack fails every 4th request (retried),")
	fmt.Fprintln(w, "trello goes down in round 5, an operator holds payments open from round 7 (maintenance),")
	fmt.Fprintln(w, "github has no layers.")
	ctx := context.Background()
	for round := 1; round <= 10; round++ {
		switch round {
		case 5:
			services["trello"].setDown(true)
		case 7:
			stack.Breaker("payments").ForceOpen()
		}
		sc.round(ctx)
	}

	fmt.Fprintln(w, "\nStats() by executor:")
	stats := stack.Stats()
	for _, name := range stack.Executors() {
		st := stats[name]
		fmt.Fprintf(w, "%s\n", name)
		if b := st.Breaker; b != nil {
			forced := ""
			if b.Forced {
				forced = " (forced)"
			}
			fmt.Fprintf(w, "  breaker:  %v%s; calls %d: successes %d, failures %d, rejections %d; times opened %d; mean latency %v\n",
				b.State, forced, b.Total, b.Successes, b.Failures, b.Rejections, b.TimesOpened, b.MeanLatency.Round(time.Millisecond))
		} else {
			fmt.Fprintln(w, "  breaker:  none")
		}
		if f := st.Fallback; f != nil && f.Hits+f.Misses > 0 {
			fmt.Fprintf(w, "  fallback: %d failed calls served from cache, %d found nothing (hit ratio %.0f%%)\n", f.Hits, f.Misses, 100*f.HitRatio())
		} else if f != nil {
			fmt.Fprintln(w, "  fallback: no failed call needed it")
		} else {
			fmt.Fprintln(w, "  fallback: none")
		}
		fmt.Fprintf(w, "  events:   %s\n", events.String(name))
	}

	fmt.Fprintln(w, "\nSummary():")
	fmt.Fprint(w, stack.Summary())
	return nil
}
