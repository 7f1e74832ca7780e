// Package workflow is the story the orchestrator example tells: an agent's
// plan — create a Notion page, create a Trello card, post to Slack — run
// three times as a workflow over a bulwark pipeline, with the idempotency
// records in a store the caller chooses (in memory, or Redis).
//
//   - Run 1 completes steps 1 and 2, then the process dies: nothing is
//     rolled back, and the store keeps the two steps' results.
//   - Run 2, a restarted process (a new Stack over the same store),
//     replays steps 1 and 2 without calling the services; step 3 fails
//     with a final answer, and the workflow undoes steps 2 and 1, the
//     replayed ones too (pipeline.Undo receives each step's value), newest
//     first; their keys are forgotten.
//   - Run 3 executes every step anew; the undone steps run under new
//     remote keys (a new generation of their keys), so the services do not
//     answer them with the deleted page and card.
//
// Each step is one pipeline call keyed by the step's name and the agent's
// reasoning (pipeline.IdempotencyKeyParts), and sends the key it runs
// under, idempotency.KeyFrom(ctx), to its service as the Idempotency-Key.
package workflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// errCrashed ends run 1: the process died after step 2.
var errCrashed = errors.New("the process died")

// Run tells the story on store, writing it to w, and returns an error if
// any run did not go as told (a step replayed or executed when it should
// not have been, something left behind, an old key sent again). store must
// not hold the plan's keys yet: give it a new MemoryStore, or a Redis
// store under a prefix of its own. Run is not safe for concurrent use with
// the same store.
func Run(w io.Writer, store idempotency.Store) error {
	if store == nil {
		return errors.New("workflow: Run: nil store")
	}
	d := &demo{w: w, store: store, svc: newServices(w), plan: agentPlan()}
	for _, st := range d.plan {
		k, err := st.key()
		if err != nil {
			return err
		}
		d.keys = append(d.keys, k)
	}
	ctx := context.Background()
	d.intro()
	for _, run := range []func(context.Context) error{d.run1, d.run2, d.run3} {
		if err := run(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\nEach effect exists once: the undone steps ran again under new keys,")
	fmt.Fprintln(w, "and nothing was left behind.")
	return nil
}

// run1 completes steps 1 and 2, then the process dies.
func (d *demo) run1(ctx context.Context) error {
	fmt.Fprintln(d.w, "\n=== Run 1: steps 1 and 2 complete, then the process dies ===")
	outs, err := d.run(ctx, 2)
	if !errors.Is(err, errCrashed) {
		return fmt.Errorf("run 1: %v, want the simulated crash", err)
	}
	for i, o := range outs {
		if o.replayed || o.key != d.keys[i] {
			return fmt.Errorf("run 1: step %d replayed or sent key %q, want executed under %q", i+1, o.key, d.keys[i])
		}
	}
	return nil
}

// run2 replays steps 1 and 2; step 3 fails for good, and the workflow
// undoes steps 2 and 1.
func (d *demo) run2(ctx context.Context) error {
	fmt.Fprintln(d.w, "\n=== Run 2: a new process reruns the plan; Slack has archived #sprint-7 ===")
	fmt.Fprintln(d.w, "  (a new Stack over the same store, as a restarted process builds)")
	d.svc.archiveChannel(true)
	before, _ := d.svc.counts()
	outs, err := d.run(ctx, 0)
	if !errors.Is(err, bulwark.ErrFinal) || len(outs) != 3 {
		return fmt.Errorf("run 2: %v after %d steps, want step 3's final answer", err, len(outs))
	}
	if !outs[0].replayed || !outs[1].replayed {
		return errors.New("run 2: steps 1 and 2 should have been replayed")
	}
	// Sent: the Slack post, then one delete per undone step.
	if after, _ := d.svc.counts(); after-before != 3 {
		return fmt.Errorf("run 2 sent %d requests, want 3 (the post and two deletes)", after-before)
	}
	if s := d.svc.String(); s != "nothing" {
		return fmt.Errorf("run 2 left %s behind", s)
	}
	return nil
}

// run3 executes every step, the undone ones under new keys, and completes.
func (d *demo) run3(ctx context.Context) error {
	fmt.Fprintln(d.w, "\n=== Run 3: #sprint-7 is back; Notion answers one request with a 503 ===")
	fmt.Fprintln(d.w, "  (steps 1 and 2 were undone: they run under generation 1 of their keys;")
	fmt.Fprintln(d.w, "  step 3 never completed: it keeps its key, as a retry would)")
	d.svc.archiveChannel(false)
	d.svc.failPageCreations(1)
	outs, err := d.run(ctx, 0)
	if err != nil {
		return fmt.Errorf("run 3: %w", err)
	}
	// Steps 1 and 2 were undone: a new generation. Step 3 never completed:
	// its key is the one its failed run-2 request carried.
	for i, want := range []string{idempotency.GenerationKey(d.keys[0], 1), idempotency.GenerationKey(d.keys[1], 1), d.keys[2]} {
		if o := outs[i]; o.replayed || o.key != want {
			return fmt.Errorf("run 3: step %d replayed or sent key %q, want executed under %q", i+1, o.key, want)
		}
	}
	if outs[0].attempts != 2 {
		return fmt.Errorf("run 3: step 1 took %d attempts, want 2 (the 503, then success)", outs[0].attempts)
	}
	pages, uploads, cards, messages := d.svc.holdings()
	if len(pages) != 1 || len(uploads) != 1 || len(cards) != 1 || len(messages) != 1 {
		return fmt.Errorf("run 3 left %v, want exactly one page, upload, card and message", d.svc)
	}
	if _, hits := d.svc.counts(); hits != 0 {
		return fmt.Errorf("%d requests were answered with an old key's first answer", hits)
	}
	return nil
}

// demo holds what outlives the runs: the store, the services, the plan
// and each step's key (generation 0).
type demo struct {
	w     io.Writer
	store idempotency.Store
	svc   *services
	plan  []step
	keys  []string
}

// outcome is what one step of a run did.
type outcome struct {
	value    string
	replayed bool
	attempts int
	key      string // the key sent to the service by the last attempt; "" if none ran
}

func (d *demo) intro() {
	fmt.Fprint(d.w, ""+
		"An agent's plan, run as a workflow over a bulwark pipeline. Each step is\n"+
		"one pipeline call keyed by the step's name and the agent's reasoning\n"+
		"(pipeline.IdempotencyKeyParts); it sends the key it runs under,\n"+
		"idempotency.KeyFrom(ctx), as its Idempotency-Key. Like Stripe's API, the\n"+
		"services answer a key they have seen with its first answer.\n"+
		"Lines that start with a service's name are requests that reached it;\n"+
		"the others say what bulwark did.\n\n")
	for i, st := range d.plan {
		fmt.Fprintf(d.w, "  %d. %-12s on %-6s key %s\n", i+1, st.name, st.executor, shortKey(d.keys[i]))
	}
}

// newStack returns the Stack a run's process builds: the idempotency
// records in the demo's store, three attempts per call, 100ms apart, and
// each attempt in a rollback scope of its own. It prints what the layers
// report; stop ends that.
func (d *demo) newStack() (s *pipeline.Stack, stop func(), err error) {
	cfg := pipeline.Reliable()
	cfg.Idempotency.Store = d.store
	cfg.Idempotency.TTL = time.Hour
	cfg.Retry = &retry.Config{MaxAttempts: 3, InitialInterval: 100 * time.Millisecond, NoJitter: true}
	if s, err = pipeline.New(cfg); err != nil {
		return nil, nil, err
	}
	return s, s.Subscribe(func(e bulwark.Event) {
		switch e.Kind {
		case bulwark.RollbackCompensated: // of an attempt's own scope
			fmt.Fprintf(d.w, "    failed attempt undone: %s (its OnRollback)\n", e.Step)
		case bulwark.RollbackFailed:
			fmt.Fprintf(d.w, "    FAILED ATTEMPT NOT UNDONE: %s: %v\n", e.Step, e.Err)
		case bulwark.RetryAttempt:
			fmt.Fprintf(d.w, "    retry: attempt %d failed; the next one sends the same key\n", e.Attempt)
		case bulwark.IdempotencyForgotten:
			fmt.Fprintf(d.w, "    %s key %s: its next execution gets a new key\n", e.Kind, shortKey(e.Key))
		}
	}), nil
}

// run runs the plan once, as a new process would: a new Stack over the
// store, and the steps in one rollback scope, each a keyed pipeline call
// whose undo is attached with pipeline.Undo. With crashAfter > 0 the run
// stops after that many steps as if the process died: the scope is
// dropped, neither committed nor rolled back. It returns what each step
// that ran did.
func (d *demo) run(ctx context.Context, crashAfter int) ([]outcome, error) {
	stack, stop, err := d.newStack()
	if err != nil {
		return nil, err
	}
	defer stop()
	ctx, scope, err := rollback.Begin(ctx, rollback.WithConfig(rollback.Config{OnEvent: func(e bulwark.Event) {
		switch e.Kind {
		case bulwark.RollbackCompensated:
			fmt.Fprintf(d.w, "    undone: %s\n", e.Step)
		case bulwark.RollbackFailed:
			fmt.Fprintf(d.w, "    UNDO FAILED: %s: %v\n", e.Step, e.Err)
		}
	}}))
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	var outs []outcome
	for i, st := range d.plan {
		if crashAfter > 0 && i == crashAfter {
			fmt.Fprintln(d.w, "  ✗ the process dies: no rollback runs, the store keeps steps 1 and 2")
			d.holdings()
			return outs, errCrashed
		}
		fmt.Fprintf(d.w, "  ▸ step %d: %s on %s\n", i+1, st.name, st.executor)
		var sent lastKey
		r := pipeline.Execute(ctx, stack, st.executor, func(ctx context.Context) (string, error) {
			key, err := remoteKey(ctx)
			if err != nil {
				return "", err
			}
			sent.set(key)
			return st.do(ctx, d.svc, key, values)
		},
			pipeline.IdempotencyKeyParts(st.name, st.reasoning),
			pipeline.Undo(st.undoName, func(ctx context.Context, v string) error { return st.undo(d.svc, ctx, v) }))
		o := outcome{value: r.Value, replayed: r.Replayed, attempts: r.Attempts, key: sent.get()}
		outs = append(outs, o)
		switch {
		case r.Err != nil:
			if errors.Is(r.Err, bulwark.ErrFinal) {
				fmt.Fprintf(d.w, "    failed: %v (a final answer: not retried)\n", r.Err)
			} else {
				fmt.Fprintf(d.w, "    failed after %s: %v\n", attempts(r.Attempts), r.Err)
			}
			fmt.Fprintln(d.w, "  rolling back, newest first, the replayed steps too (pipeline.Undo gets")
			fmt.Fprintln(d.w, "  each step's value); after each undo, the step's key is forgotten:")
			err := scope.Rollback(fmt.Errorf("step %s: %w", st.name, r.Err))
			fmt.Fprintf(d.w, "  result: rolled back (%v)\n", err)
			d.holdings()
			return outs, err
		case r.Replayed:
			fmt.Fprintf(d.w, "    replayed: %s (no request sent)\n", r.Value)
		default:
			fmt.Fprintf(d.w, "    executed: %s in %s, key %s (generation %s)\n",
				r.Value, attempts(r.Attempts), shortKey(o.key), generation(o.key))
		}
		values[st.name] = r.Value
	}
	if err := scope.Commit(); err != nil {
		return outs, err
	}
	fmt.Fprintln(d.w, "  result: done")
	d.holdings()
	return outs, nil
}

// holdings prints what the services hold.
func (d *demo) holdings() {
	fmt.Fprintf(d.w, "  the services hold: %v\n", d.svc)
}

// attempts says "1 attempt", "2 attempts".
func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// generation returns the generation of a key KeyFrom returned: the
// number after its dot, or 0.
func generation(key string) string {
	if _, gen, ok := strings.Cut(key, "."); ok {
		return gen
	}
	return "0"
}

// lastKey is the key a step's last attempt sent, set by the attempt and
// read once the call returned.
type lastKey struct {
	mu  sync.Mutex
	key string
}

func (k *lastKey) set(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.key = key
}

func (k *lastKey) get() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.key
}
