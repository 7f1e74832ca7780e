package redisstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
)

// The orchestrator process: the test binary started again with
// workflowEnv set runs workflowProcMain instead of the tests. It is one
// run of TestWorkflowAcrossProcesses's plan (Notion page, Trello card,
// Slack message), with a Stack, a store and a Redis client of its own:
//
//   - "crash": steps 1 and 2 outside any rollback scope, then os.Exit(0)
//     at once, as a process killed after them (no rollback, no cleanup).
//   - "die-in-step": step 1 outside any rollback scope, then step 2,
//     whose operation makes the Trello card and dies (os.Exit(0)) before
//     returning: its claim stays until its lease lapses.
//   - "fail": the whole plan in rollback.Do, step 3 failing permanently.
//   - "run": the whole plan in rollback.Do.
//
// Except after a crash, it prints its workflowReport as JSON and exits 0;
// it exits 1, with the reason on standard error, if it cannot run.

const (
	workflowEnv       = "BULWARK_REDISSTORE_WORKFLOW" // the Redis address
	workflowPrefixEnv = "BULWARK_REDISSTORE_WORKFLOW_PREFIX"
	workflowModeEnv   = "BULWARK_REDISSTORE_WORKFLOW_MODE"
	workflowLeaseEnv  = "BULWARK_REDISSTORE_WORKFLOW_LEASE" // the claims' lease, a time.Duration
)

// workflowReport is what an orchestrator process saw of its steps.
type workflowReport struct {
	Values   []string
	Replayed []bool
	Err      string
}

const workflowReason = "sprint 7"

func workflowProcMain() int {
	if err := orchestrate(); err != nil {
		fmt.Fprintln(os.Stderr, "orchestrator:", err)
		return 1
	}
	return 0
}

func orchestrate() error {
	addr, prefix, mode := os.Getenv(workflowEnv), os.Getenv(workflowPrefixEnv), os.Getenv(workflowModeEnv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		return err
	}
	var lease time.Duration
	if l := os.Getenv(workflowLeaseEnv); l != "" {
		if lease, err = time.ParseDuration(l); err != nil {
			return err
		}
	}
	p, err := newProcessOn(store, client, prefix, lease)
	if err != nil {
		return err
	}
	switch mode {
	case "crash":
		if _, err := p.crash(ctx, 2, workflowReason); err != nil {
			return err
		}
		os.Exit(0) // dies: no rollback, nothing deferred runs
	case "die-in-step":
		if _, err := p.crash(ctx, 1, workflowReason); err != nil {
			return err
		}
		r := p.stepWith(ctx, 1, workflowReason, func(ctx context.Context) (string, error) {
			if _, err := p.svc.Create(ctx, plan[1].kind); err != nil {
				return "", err
			}
			os.Exit(0) // dies after the remote did the work, holding the claim
			return "", nil
		})
		return fmt.Errorf("step 2 returned: %v", r.Err)
	case "fail", "run":
		failAt := -1
		if mode == "fail" {
			failAt = 2
		}
		rs, err := p.run(ctx, workflowReason, failAt, false)
		var rep workflowReport
		for _, r := range rs {
			rep.Values = append(rep.Values, r.Value)
			rep.Replayed = append(rep.Replayed, r.Replayed)
		}
		if err != nil {
			rep.Err = err.Error()
		}
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// orchestrator runs one orchestrator process in mode over the Redis at
// addr, under prefix, and returns its report (zero after a crash).
// extraEnv is more of its environment, as "NAME=value".
func orchestrator(t *testing.T, addr, prefix, mode string, extraEnv ...string) workflowReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workflowEnv+"="+addr, workflowPrefixEnv+"="+prefix, workflowModeEnv+"="+mode)
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "orchestrator %q: %s", mode, stderr.String())
	var rep workflowReport
	if mode == "fail" || mode == "run" {
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), "orchestrator %q's report: %q", mode, stdout.String())
	}
	return rep
}

// TestWorkflowAcrossProcesses: process A runs steps 1 and 2 of the plan
// and dies without rolling back; process B reruns the plan, whose step 3
// fails permanently: both effects are undone exactly once (counted in the
// remote services' own log, in Redis); process C runs the plan again and
// executes every step under new remote keys.
func TestWorkflowAcrossProcesses(t *testing.T) {
	addr, prefix := redisAddr(t), testPrefix()
	client := newClient(t, addr)
	t.Cleanup(func() { deleteKeys(client, prefix) })
	svc := newServices(client, prefix)

	orchestrator(t, addr, prefix, "crash")
	assert.Equal(t, []string{"create page-1", "create card-2"}, svc.Log(t), "process A")
	assert.ElementsMatch(t, []string{"page-1", "card-2"}, svc.Live(t))

	b := orchestrator(t, addr, prefix, "fail")
	assert.Contains(t, b.Err, "channel archived")
	assert.Equal(t, []string{"page-1", "card-2", ""}, b.Values, "process B replays the steps of A")
	assert.Equal(t, []bool{true, true, false}, b.Replayed)
	assert.Equal(t, []string{"create page-1", "create card-2", "delete card-2", "delete page-1"}, svc.Log(t),
		"process B undoes each effect exactly once")
	assert.Empty(t, svc.Live(t))

	c := orchestrator(t, addr, prefix, "run")
	assert.Empty(t, c.Err)
	assert.Equal(t, []string{"page-3", "card-4", "message-5"}, c.Values, "process C executes every step")
	assert.Equal(t, []bool{false, false, false}, c.Replayed)
	assert.ElementsMatch(t, []string{"page-3", "card-4", "message-5"}, svc.Live(t))

	// Every effect was created and deleted at most once, and each step's
	// execution in C went out under a remote key no earlier execution used.
	log := svc.Log(t)
	seen := map[string]bool{}
	for _, e := range log {
		assert.False(t, seen[e], "%q twice in %q", e, log)
		seen[e] = true
	}
	for i, st := range plan {
		keys := svc.Keys(t, st.kind)
		require.NotEmpty(t, keys, "step %d", i+1)
		last := keys[len(keys)-1]
		for _, k := range keys[:len(keys)-1] {
			assert.NotEqual(t, last, k, "step %d: process C reused a remote key", i+1)
		}
		base := stepKey(st, workflowReason)
		want := base
		if i < 2 {
			want = idempotency.GenerationKey(base, 1) // undone once
		}
		assert.Equal(t, want, last, "step %d", i+1)
	}
	// The stored results are those of C: a fourth run replays them all.
	d := orchestrator(t, addr, prefix, "run")
	assert.Equal(t, c.Values, d.Values)
	assert.Equal(t, []bool{true, true, true}, d.Replayed)
	assert.Len(t, svc.Log(t), len(log), "nothing more happened")
}

// TestWorkflowCrashInsideAStep: process A completes step 1, then dies
// inside step 2 after the remote made the card, holding the step's claim.
// Once the claim's lease lapsed, process B reruns the plan: step 2 runs
// again under the same remote key (the remote may have done the work, and
// it had), so the remote answers with the card it made instead of a
// second one; step 3 fails, and both effects are undone exactly once.
// Process C then runs every step under new remote keys.
func TestWorkflowCrashInsideAStep(t *testing.T) {
	const lease = 500 * time.Millisecond
	addr, prefix := redisAddr(t), testPrefix()
	store, client := newStore(t, addr, redisstore.Config{Prefix: prefix})
	svc := newServices(client, prefix)
	leaseEnv := workflowLeaseEnv + "=" + lease.String()
	cardKey := stepKey(plan[1], workflowReason)

	orchestrator(t, addr, prefix, "die-in-step", leaseEnv)
	assert.Equal(t, []string{"create page-1", "create card-2"}, svc.Log(t), "process A")
	rec, found, err := store.Get(t.Context(), cardKey)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, idempotency.InProgress, rec.State, "A's claim on step 2 outlives A")
	require.Eventually(t, func() bool {
		_, found, err := store.Get(t.Context(), cardKey)
		return err == nil && !found
	}, 20*lease, lease/10, "A's claim lapses")

	b := orchestrator(t, addr, prefix, "fail", leaseEnv)
	assert.Contains(t, b.Err, "channel archived")
	assert.Equal(t, []string{"page-1", "card-2", ""}, b.Values, "step 2 gets the card A's request made")
	assert.Equal(t, []bool{true, false, false}, b.Replayed, "step 2 ran again: it never completed")
	assert.Equal(t, []string{cardKey, cardKey}, svc.Keys(t, "card"), "under the same remote key")
	assert.Equal(t, []string{"create page-1", "create card-2", "delete card-2", "delete page-1"}, svc.Log(t),
		"each effect undone exactly once")
	assert.Empty(t, svc.Live(t))

	c := orchestrator(t, addr, prefix, "run", leaseEnv)
	assert.Empty(t, c.Err)
	assert.Equal(t, []string{"page-3", "card-4", "message-5"}, c.Values)
	assert.Equal(t, []string{cardKey, cardKey, idempotency.GenerationKey(cardKey, 1)}, svc.Keys(t, "card"))
	assert.ElementsMatch(t, []string{"page-3", "card-4", "message-5"}, svc.Live(t))
}
