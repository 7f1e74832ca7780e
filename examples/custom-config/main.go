// Command custom-config gives two executors of one Stack opposite
// configurations and runs them through the same outage:
//
//   - payment-api is strict (the Critical preset): its circuit opens after 2
//     failures, waits long before probing, needs 5 successful probes to
//     close, and a charge is never answered from a cache (no fallback
//     layer, and every charge passes SkipFallback as well). Charges carry an
//     idempotency key built from the order, so a retried charge cannot bill
//     twice.
//   - slack is tolerant (the Unreliable preset): its circuit opens after 3
//     failures, probes sooner, closes after 3 successful probes, and a read
//     that fails is answered with the last good result, up to 10 minutes
//     old.
//
// Run it with `go run ./examples/custom-config`.
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
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "custom-config:", err)
		os.Exit(1)
	}
}

// The shared timeline: a call to each service every interval; both are
// down for calls downFrom up to (not including) upFrom.
const (
	interval = 100 * time.Millisecond
	calls    = 22
	downFrom = 1 // 0.10s
	upFrom   = 6 // 0.60s
	latency  = 20 * time.Millisecond
	shorten  = 100 // reset timeouts are divided by this for the demo
)

// service is an in-memory fake: every request takes latency and fails
// while the service is down.
type service struct {
	name string

	mu       sync.Mutex
	down     bool
	requests int
}

func (s *service) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *service) request(ctx context.Context) (int, error) {
	t := time.NewTimer(latency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return 0, fmt.Errorf("%s: 503 Service Unavailable", s.name)
	}
	s.requests++
	return s.requests, nil
}

// configs returns the two configurations, with the reset timeouts
// shortened for the demo and retry off, so that each row of the table is
// one attempt.
func configs() (payments, slack pipeline.Config) {
	payments = pipeline.Critical()
	payments.Breaker.ResetTimeout /= shorten
	payments.Retry = nil

	slack = pipeline.Unreliable()
	slack.Breaker.ResetTimeout /= shorten
	slack.Retry = nil
	return payments, slack
}

func run(w io.Writer) error {
	payCfg, slackCfg := configs()
	// slack takes the stack's defaults; payment-api gets its own config.
	stack, err := pipeline.New(slackCfg)
	if err != nil {
		return err
	}
	if err := stack.Configure("payment-api", payCfg); err != nil {
		return err
	}
	pay := &service{name: "payment-api"}
	slack := &service{name: "slack"}

	fmt.Fprintln(w, "Two executors, one outage. Reset timeouts are shortened 100× for the demo; retry is off, so each row is one attempt.")
	fmt.Fprintf(w, "  payment-api (Critical):  opens after %d failures within %v, probes after %v (production %v), closes after %d probes; no fallback\n",
		payCfg.Breaker.FailureThreshold, payCfg.Breaker.FailureWindow, payCfg.Breaker.ResetTimeout,
		payCfg.Breaker.ResetTimeout*shorten, payCfg.Breaker.SuccessThreshold)
	fmt.Fprintf(w, "  slack (Unreliable):      opens after %d failures within %v, probes after %v (production %v), closes after %d probes; fallback up to %v old\n",
		slackCfg.Breaker.FailureThreshold, slackCfg.Breaker.FailureWindow, slackCfg.Breaker.ResetTimeout,
		slackCfg.Breaker.ResetTimeout*shorten, slackCfg.Breaker.SuccessThreshold, slackCfg.Fallback.MaxAge)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-6s  %-8s  %-34s  %s\n", "TIME", "SERVICES", "payment-api: charge order", "slack: read #general")

	var charged, refused, served, cached int
	ctx := context.Background()
	start := time.Now()
	for i := range calls {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		at := time.Since(start)
		switch i {
		case downFrom:
			pay.setDown(true)
			slack.setDown(true)
		case upFrom:
			pay.setDown(false)
			slack.setDown(false)
		}
		status := "up"
		if i >= downFrom && i < upFrom {
			status = "down"
		}

		order := 1001 + i
		charge := pipeline.Execute(ctx, stack, "payment-api", pay.request,
			pipeline.IdempotencyKeyParts("charge", order), pipeline.SkipFallback())
		payCell := describe(charge, func(n int) string { return fmt.Sprintf("charged #%d (ch_%d)", order, n) })
		if charge.Err == nil {
			charged++
		} else {
			refused++
		}

		read := pipeline.Execute(ctx, stack, "slack", slack.request, pipeline.Operation("read #general"))
		slackCell := describe(read, func(n int) string { return fmt.Sprintf("history v%d", n) })
		if read.Err == nil {
			served++
		}
		if read.FromCache {
			cached++
		}

		fmt.Fprintf(w, "%-6s  %-8s  %-24s %-9s  %-24s %s\n", fmt.Sprintf("%.2fs", at.Seconds()), status,
			payCell, stack.Breaker("payment-api").State(), slackCell, stack.Breaker("slack").State())
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "payment-api: %d charges made, %d refused with an error: the shop asks the customer to try again, never shows a stale answer.\n", charged, refused)
	fmt.Fprintf(w, "slack:       %d of %d reads answered, %d of them from the cache.\n", served, calls, cached)

	// The strict executor's idempotency layer: a second click on "Pay" for
	// an order already charged replays the charge instead of billing again.
	again := pipeline.Execute(ctx, stack, "payment-api", pay.request,
		pipeline.IdempotencyKeyParts("charge", 1016), pipeline.SkipFallback())
	fmt.Fprintf(w, "payment-api: order #1016 submitted again: replayed=%v, charge ch_%d, requests to the processor still %d.\n",
		again.Replayed, again.Value, pay.requests)

	fmt.Fprintln(w)
	fmt.Fprint(w, stack.Summary())
	if served != calls {
		return errors.New("every slack read should have been answered")
	}
	return nil
}

// describe is a table cell for a call's result.
func describe(r pipeline.Result[int], ok func(int) string) string {
	switch {
	case r.FromCache && r.Rejected:
		return "rejected → cached"
	case r.FromCache:
		return "failed → cached"
	case errors.Is(r.Err, bulwark.ErrRejected):
		return "rejected: circuit open"
	case r.Err != nil:
		return "failed: 503"
	}
	return ok(r.Value)
}
