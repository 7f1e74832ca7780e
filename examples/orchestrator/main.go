// Command orchestrator runs an agent's plan — create a Notion page, create
// a Trello card, post a Slack message — as one workflow over a bulwark
// stack, and shows what each layer contributes:
//
//   - each step's idempotency key is derived from the step's name and the
//     agent's reasoning text for it (pipeline.IdempotencyKeyParts), so the
//     same decision is never carried out twice;
//   - a transient failure is retried, and the failed attempt's partial
//     effect is undone before the next attempt (the pipeline runs each
//     attempt in its own rollback scope);
//   - the workflow runs in a rollback scope of its own (rollback.Do): a
//     step's compensations, registered with rollback.OnRollback inside the
//     step, are handed to it when the step succeeds, so a permanent failure
//     of a late step undoes the earlier steps, newest first;
//   - a rerun of the same plan replays the completed steps instead of
//     calling the services again.
//
// A step undone by a rollback must not be replayed (its result names a page
// that no longer exists): the pipeline registers, with the workflow's
// scope, the forgetting of each executed step's key, which runs after the
// step's own undo, so a rerun executes the undone steps again.
//
// Run it with `go run ./examples/orchestrator`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orchestrator:", err)
		os.Exit(1)
	}
}

// step is one tool call of the agent's plan.
type step struct {
	name      string // the tool, e.g. "create-page"
	executor  string // the service it calls
	reasoning string // the agent's reasoning for this call
	// do carries the step out. It receives the outputs of the earlier
	// steps, by step name, and registers the compensation of what it did.
	do func(ctx context.Context, ws *workspace, out map[string]string) (string, error)
}

// agentPlan returns the agent's plan.
func agentPlan() []step {
	return []step{
		{
			name:      "create-page",
			executor:  "notion",
			reasoning: "The team asked for one place to collect the sprint 7 retro notes; a Notion page with the retro template fits.",
			do: func(ctx context.Context, ws *workspace, _ map[string]string) (string, error) {
				id := ws.createPage(ctx, "Sprint 7 retro")
				// Register the undo as soon as the page exists: if the next
				// request fails, this attempt's scope deletes the page.
				if err := rollback.OnRollback(ctx, "delete page "+id, func(ctx context.Context) error {
					return ws.deletePage(ctx, id)
				}); err != nil {
					return "", err
				}
				if err := ws.appendBlocks(ctx, id, 3); err != nil {
					return "", err
				}
				return id, nil
			},
		},
		{
			name:      "create-card",
			executor:  "trello",
			reasoning: "The flaky deploys came up in every standup; a card on the sprint board gives the follow-up an owner.",
			do: func(ctx context.Context, ws *workspace, _ map[string]string) (string, error) {
				id := ws.createCard(ctx, "Fix flaky deploys")
				return id, rollback.OnRollback(ctx, "delete card "+id, func(ctx context.Context) error {
					return ws.deleteCard(ctx, id)
				})
			},
		},
		{
			name:      "post-message",
			executor:  "slack",
			reasoning: "Tell #sprint-7 where the retro notes and the follow-up card are, so nobody has to ask.",
			do: func(ctx context.Context, ws *workspace, out map[string]string) (string, error) {
				text := fmt.Sprintf("Retro notes: %s, follow-up: %s", out["create-page"], out["create-card"])
				ts, err := ws.postMessage(ctx, "#sprint-7", text)
				if errors.Is(err, errChannelNotFound) {
					return "", retry.Permanent(err) // asking again cannot create the channel
				}
				if err != nil {
					return "", err
				}
				return ts, rollback.OnRollback(ctx, "delete message "+ts, func(ctx context.Context) error {
					return ws.deleteMessage(ctx, ts)
				})
			},
		},
	}
}

// orchestrator runs plans over a stack.
type orchestrator struct {
	w     io.Writer
	stack *pipeline.Stack
	ws    *workspace
}

// key is the idempotency key the pipeline derives for st:
// idempotency.Key(executor, name, reasoning).
func key(st step) string {
	k, err := idempotency.Key(st.executor, st.name, st.reasoning)
	if err != nil {
		panic(err) // strings always encode
	}
	return k
}

// runPlan runs the steps in order inside one rollback scope.
func (o *orchestrator) runPlan(ctx context.Context, steps []step) error {
	ctx, report := bulwark.WithReport(ctx)
	undo := rollback.Config{OnEvent: func(e bulwark.Event) {
		if e.Kind == bulwark.RollbackFailed {
			fmt.Fprintf(o.w, "    UNDO FAILED: %s: %v\n", e.Step, e.Err)
			return
		}
		fmt.Fprintf(o.w, "    undone: %s\n", e.Step)
	}}
	_, err := rollback.Do(ctx, func(ctx context.Context) (struct{}, error) {
		out := map[string]string{}
		for _, st := range steps {
			fmt.Fprintf(o.w, "  ▸ %s on %s\n", st.name, st.executor)
			r := pipeline.Execute(ctx, o.stack, st.executor, func(ctx context.Context) (string, error) {
				return st.do(ctx, o.ws, out)
			}, pipeline.IdempotencyKeyParts(st.name, st.reasoning))
			switch {
			case r.Err != nil:
				fmt.Fprintf(o.w, "    FAILED after %d attempt(s): %v\n", r.Attempts, r.Err)
				fmt.Fprintln(o.w, "  workflow failed: rolling back the completed steps, newest first (the undos each step")
				fmt.Fprintln(o.w, "  registered inside the pipeline were handed to the workflow's scope when the step succeeded)")
				return struct{}{}, fmt.Errorf("step %s: %w", st.name, r.Err)
			case r.Replayed:
				fmt.Fprintf(o.w, "    replayed: %s (no request sent)\n", r.Value)
			default:
				note := ""
				if r.RolledBack {
					note = ", the failed attempt undone before the retry"
				}
				fmt.Fprintf(o.w, "    executed: %s in %d attempt(s)%s\n", r.Value, r.Attempts, note)
			}
			out[st.name] = r.Value
		}
		return struct{}{}, nil
	}, rollback.WithConfig(undo))
	if err != nil {
		fmt.Fprintf(o.w, "  result: %v (workflow rolled back: %v)\n", err, report.RolledBack())
	} else {
		fmt.Fprintln(o.w, "  result: done")
	}
	fmt.Fprintf(o.w, "  %v\n", o.ws)
	return err
}

func run(w io.Writer) error {
	cfg := pipeline.Reliable() // idempotency in memory, one store per executor
	cfg.Retry = &retry.Config{MaxAttempts: 3, InitialInterval: 100 * time.Millisecond, NoJitter: true}
	stack, err := pipeline.New(cfg)
	if err != nil {
		return err
	}
	// Show the undo of a failed attempt, which runs inside the pipeline.
	defer stack.Subscribe(func(e bulwark.Event) {
		switch e.Kind {
		case bulwark.RollbackCompensated:
			fmt.Fprintf(w, "    failed attempt undone: %s\n", e.Step)
		case bulwark.RollbackFailed:
			fmt.Fprintf(w, "    FAILED ATTEMPT NOT UNDONE: %s: %v\n", e.Step, e.Err)
		}
	})()
	ws := newWorkspace(w)
	o := &orchestrator{w: w, stack: stack, ws: ws}
	ctx := context.Background()
	plan := agentPlan()

	fmt.Fprintln(w, "The agent's plan (idempotency key = hash of executor, step name and reasoning):")
	for i, st := range plan {
		fmt.Fprintf(w, "  %d. %-12s on %-6s key %s…  %q\n", i+1, st.name, st.executor, key(st)[:12], st.reasoning)
	}

	fmt.Fprintln(w, "\nRun 1: notion fails one request with a 503 (transient), and Slack's #sprint-7 channel does not")
	fmt.Fprintln(w, "exist yet (channel_not_found is permanent: the step marks it with retry.Permanent, so it is not retried).")
	ws.failNextAppends(1)
	if err := o.runPlan(ctx, plan); err == nil {
		return errors.New("run 1 should have failed")
	}

	fmt.Fprintln(w, "\nSomeone creates #sprint-7.")
	ws.createChannel("#sprint-7")

	fmt.Fprintln(w, "\nRun 2: the same plan again. The steps run 1 undid run again: the pipeline forgot their keys after the undo.")
	if err := o.runPlan(ctx, plan); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nRun 3: the agent restarts and reruns the same plan. Every step completed, so every step is replayed.")
	before := ws.requestCount()
	if err := o.runPlan(ctx, plan); err != nil {
		return err
	}
	if n := ws.requestCount() - before; n != 0 {
		return fmt.Errorf("run 3 sent %d requests; it should have replayed every step", n)
	}
	return nil
}
