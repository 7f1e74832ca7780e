package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// propWorld is the remote side of the property test's workflows: effects
// that exist, and how often each was deleted. Keyed requests honour their
// idempotency key, as Stripe's or Notion's API do: a key seen before gets
// the first answer again, even if its effect was deleted since.
type propWorld struct {
	mu      sync.Mutex
	n       int
	byKey   map[string]string
	exists  map[string]bool
	deleted map[string]int
}

func newPropWorld() *propWorld {
	return &propWorld{byKey: map[string]string{}, exists: map[string]bool{}, deleted: map[string]int{}}
}

// create makes an effect of step, under the call's key if keyed.
func (w *propWorld) create(ctx context.Context, step int, keyed bool) (string, error) {
	key := ""
	if keyed {
		k, _, ok := idempotency.KeyFrom(ctx)
		if !ok {
			return "", bulwark.Final(errors.New("no idempotency key in a keyed call"))
		}
		key = k
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if id, seen := w.byKey[key]; keyed && seen {
		return id, nil
	}
	w.n++
	id := fmt.Sprintf("s%d-%d", step, w.n)
	if keyed {
		w.byKey[key] = id
	}
	w.exists[id] = true
	return id, nil
}

func (w *propWorld) delete(id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deleted[id]++
	if !w.exists[id] {
		return fmt.Errorf("%s: %w", id, rollback.ErrNoEffect)
	}
	delete(w.exists, id)
	return nil
}

// live returns the effects of step that exist.
func (w *propWorld) live(step int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	prefix := fmt.Sprintf("s%d-", step)
	for id := range w.exists {
		if strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	return out
}

func (w *propWorld) isLive(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.exists[id]
}

// deletedTwice returns an effect deleted more than once, or "".
func (w *propWorld) deletedTwice() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, n := range w.deleted {
		if n > 1 {
			return id
		}
	}
	return ""
}

var errPropFail = bulwark.Final(errors.New("step refused"))

// How a run of the workflow ends.
const (
	runCrash   = iota // the process dies after `at` steps: no scope, no rollback
	runDieIn          // the process dies inside step `at`, after its effect, holding its claim
	runFail           // after `at` steps, a call fails permanently: the workflow rolls back
	runSucceed        // every step succeeds
)

// Workflow styles.
var propStyles = []string{"Do", "Begin", "Saga"}

type propRun struct {
	kind  int
	at    int
	style string
	flaky []bool // per step: the first attempt fails after its effect

	failKeyed bool   // the failing call of a failed run has a key
	stepUndo  []bool // per keyed step of a saga: its step's Undo undoes it, not the call's
	undoFails []bool // per step with the Undo call option: it fails (the effect stays)
}

// TestWorkflowProperty: random workflows of keyed steps (pipeline.Undo,
// or, in a saga, the saga step's Undo), keyed steps whose compensation is
// registered with rollback.OnRollback inside the function, and unkeyed
// steps (rollback.OnRollback inside the function), run
// several times over one idempotency store, each run by a new Stack (a
// new process): random crashes (steps run outside any rollback scope, up
// to the crash point), random permanent failures (the workflow rolls
// back), transient failures retried, in the three workflow styles. After
// every run the remote side is what a model says; after a final
// successful run every step's effect exists exactly once, and after a
// final failed run none of the effects the run made or replayed is left.
//
// An unkeyed step executed by a crashed run leaves an orphan nothing can
// know of (no key, no scope), and a replayed step whose compensation is
// registered inside its function is not undone (its key is kept): the
// model counts both, and the claims above are about the other effects.
func TestWorkflowProperty(t *testing.T) {
	// Time matters only for the leases of dead processes' claims: the
	// checks run in a synctest bubble. rapid.Check is given the test in a
	// wrapper, so that it does not ask for the test's deadline, which a
	// bubble forbids.
	synctest.Test(t, func(t *testing.T) { rapid.Check(bubbled{t}, checkWorkflow) })
}

// bubbled is a test in a synctest bubble, for rapid.Check.
type bubbled struct{ *testing.T }

func checkWorkflow(rt *rapid.T) {
	{
		n := rapid.IntRange(1, 5).Draw(rt, "steps")
		keyed := rapid.SliceOfN(rapid.Bool(), n, n).Draw(rt, "keyed")
		inner := rapid.SliceOfN(rapid.Bool(), n, n).Draw(rt, "keyed, OnRollback inside")
		for i := range inner {
			inner[i] = inner[i] && keyed[i]
		}
		runs := make([]propRun, rapid.IntRange(1, 5).Draw(rt, "runs"))
		for r := range runs {
			kind := runCrash
			if r == len(runs)-1 {
				kind = rapid.IntRange(runFail, runSucceed).Draw(rt, "final")
			} else {
				kind = rapid.IntRange(runCrash, runSucceed).Draw(rt, "kind")
			}
			if kind == runDieIn && n == 0 {
				kind = runCrash
			}
			p := propRun{kind: kind, style: rapid.SampledFrom(propStyles).Draw(rt, "style"),
				flaky:     rapid.SliceOfN(rapid.Bool(), n, n).Draw(rt, "flaky"),
				stepUndo:  rapid.SliceOfN(rapid.Bool(), n, n).Draw(rt, "saga step Undo"),
				undoFails: rapid.SliceOfN(rapid.Bool(), n, n).Draw(rt, "Undo fails")}
			switch kind {
			case runCrash:
				p.at = rapid.IntRange(0, n).Draw(rt, "crash after")
			case runDieIn:
				p.at = rapid.IntRange(0, n-1).Draw(rt, "die in")
			case runFail:
				p.at = rapid.IntRange(0, n).Draw(rt, "fail after")
				p.failKeyed = rapid.Bool().Draw(rt, "failing call keyed")
			default:
				p.at = n
			}
			runs[r] = p
		}

		w := newPropWorld()
		store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
		require.NoError(rt, err)
		stored := make([]string, n)   // keyed steps: the effect their record holds
		inFlight := make([]string, n) // keyed steps: the effect of a claim a dead process held
		live := make([]int, n)        // the effects of each step that should exist
		ever := map[string]bool{}     // every effect a step returned
		for ri, run := range runs {
			rs, forgotten, compensated := runWorkflow(rt, store, w, keyed, inner, run)
			reached := run.at // the steps that succeeded
			want := reached
			if run.kind == runFail || run.kind == runDieIn {
				want++ // and the one that failed or died
			}
			require.Len(rt, rs, want, "run %d: every step up to the end point ran", ri)
			for i := range reached {
				r := rs[i]
				require.NoError(rt, r.Err, "run %d step %d", ri, i)
				switch {
				case keyed[i] && stored[i] != "":
					assert.True(rt, r.Replayed, "run %d step %d: a completed keyed step replays", ri, i)
					assert.Equal(rt, stored[i], r.Value, "run %d step %d", ri, i)
				case keyed[i] && inFlight[i] != "":
					// It never completed: it runs again under the same
					// remote key, and the remote answers with what the dead
					// process's request made.
					assert.False(rt, r.Replayed, "run %d step %d", ri, i)
					assert.Equal(rt, inFlight[i], r.Value, "run %d step %d: the rerun of a step that never completed sends the same remote key", ri, i)
					stored[i], inFlight[i] = r.Value, ""
				default:
					assert.False(rt, r.Replayed, "run %d step %d", ri, i)
					assert.False(rt, ever[r.Value], "run %d step %d: %s is an effect made before (a remote replay of an old key)", ri, i, r.Value)
					live[i]++
					if keyed[i] {
						stored[i] = r.Value
					}
				}
				ever[r.Value] = true
			}
			if run.kind == runDieIn && len(rs) > run.at {
				// The step whose process died: its effect exists, its
				// claim lapses before the next run.
				// A keyed step that died before under the same remote key
				// gets the same effect from the remote again.
				if id := rs[run.at].Value; id != "" && !(keyed[run.at] && id == inFlight[run.at]) {
					ever[id] = true
					live[run.at]++
					if keyed[run.at] {
						inFlight[run.at] = id
					}
				}
			}
			if run.kind == runFail {
				require.ErrorIs(rt, rs[run.at].Err, errPropFail, "run %d", ri)
				nKeyed, nUndone := 0, 0
				for i := range reached {
					if inner[i] && rs[i].Replayed {
						// Its compensation is registered inside its function,
						// which a replay does not run: nothing undoes it, and
						// its key is kept, so that a rerun replays the effect
						// that still exists (use pipeline.Undo instead).
						continue
					}
					if keyed[i] && !inner[i] && !(run.style == "Saga" && run.stepUndo[i]) && run.undoFails[i] {
						// Its Undo failed: the effect stays, and so does its
						// key, so that a rerun replays it.
						continue
					}
					nUndone++
					live[i]--
					if keyed[i] {
						stored[i] = ""
						nKeyed++
					}
					assert.False(rt, w.isLive(rs[i].Value), "run %d: step %d's effect %s is left after the rollback", ri, i, rs[i].Value)
				}
				assert.Equal(rt, nUndone, compensated, "run %d: one rollback:compensated per undone step, none for forgetting", ri)
				assert.Equal(rt, nKeyed, forgotten, "run %d: one idempotency:forgotten per undone keyed step", ri)
			} else {
				assert.Zero(rt, compensated, "run %d", ri)
				assert.Zero(rt, forgotten, "run %d", ri)
			}

			// The remote side is what the model says.
			for i := range n {
				assert.Len(rt, w.live(i), live[i], "after run %d (%+v): step %d's effects %v", ri, run, i, w.live(i))
				if keyed[i] {
					assert.LessOrEqual(rt, live[i], 1, "a keyed step's effect exists at most once")
					if stored[i] != "" {
						assert.True(rt, w.isLive(stored[i]), "after run %d: step %d's stored effect %s was deleted", ri, i, stored[i])
					}
				}
			}
			assert.Empty(rt, w.deletedTwice(), "an effect deleted twice")

			if run.kind == runDieIn {
				time.Sleep(idempotency.DefaultLease + time.Millisecond) // the dead process's claim lapses
			}
			if ri == len(runs)-1 && run.kind == runSucceed {
				for i, r := range rs {
					assert.True(rt, w.isLive(r.Value), "step %d's effect exists", i)
					if keyed[i] {
						assert.Equal(rt, []string{r.Value}, w.live(i), "step %d's effect exists exactly once", i)
					}
				}
			}
		}
	}
}

// runWorkflow runs one run of the workflow with a new Stack over store,
// and returns the results of the steps it ran, and the numbers of
// idempotency:forgotten and rollback:compensated events of its workflow
// scope.
func runWorkflow(t require.TestingT, store idempotency.Store, w *propWorld, keyed, inner []bool, run propRun) (rs []pipeline.Result[string], forgotten, compensated int) {
	cfg := pipeline.Reliable()
	cfg.Idempotency.Store = store
	cfg.Retry = &retry.Config{NoWait: true}
	s, err := pipeline.New(cfg)
	require.NoError(t, err)
	var stackEvents, scopeEvents recorder
	defer s.Subscribe(stackEvents.listen)()
	opt := rollback.WithConfig(rollback.Config{OnEvent: scopeEvents.listen})

	// sagaUndo reports whether keyed step i is undone by its saga step's
	// Undo rather than by the call's.
	sagaUndo := func(i int) bool { return run.style == "Saga" && run.kind >= runFail && run.stepUndo[i] && !inner[i] }
	step := func(ctx context.Context, i int) pipeline.Result[string] {
		attempts := 0
		fn := func(ctx context.Context) (string, error) {
			attempts++
			if inner[i] && run.flaky[i] && attempts == 1 {
				// Not after the effect: an attempt's compensation and a
				// retry under the same key would meet a remote that replays
				// the undone effect (see the report of issue 15's tests).
				return "", errors.New("connection refused")
			}
			id, err := w.create(ctx, i, keyed[i])
			if err != nil {
				return "", err
			}
			if !keyed[i] || inner[i] {
				if err := rollback.OnRollback(ctx, "delete "+id, func(context.Context) error { return w.delete(id) }); err != nil {
					return "", err
				}
			}
			if run.flaky[i] && attempts == 1 {
				return "", errors.New("connection reset after the effect")
			}
			return id, nil
		}
		var opts []pipeline.CallOption
		if keyed[i] {
			opts = append(opts, pipeline.IdempotencyKeyParts("step", i))
			if !sagaUndo(i) && !inner[i] {
				opts = append(opts, pipeline.Undo("delete", func(_ context.Context, id string) error {
					if run.undoFails[i] {
						return rollback.Permanent(errors.New("403 forbidden"))
					}
					return w.delete(id)
				}))
			}
		}
		r := pipeline.Execute(ctx, s, fmt.Sprint("svc", i), fn, opts...)
		rs = append(rs, r)
		return r
	}
	// fail is the failing call of a run that fails: keyed or not, it
	// fails permanently, so it never completes.
	fail := func(ctx context.Context) error {
		var opts []pipeline.CallOption
		if run.failKeyed {
			opts = append(opts, pipeline.IdempotencyKeyParts("check"))
		}
		r := pipeline.Execute(ctx, s, "check", func(context.Context) (string, error) { return "", errPropFail }, opts...)
		rs = append(rs, r)
		return r.Err
	}
	steps := func(ctx context.Context) (int, error) {
		for i := range keyed {
			if run.kind == runFail && i == run.at {
				return 0, fail(ctx)
			}
			if r := step(ctx, i); r.Err != nil {
				return 0, r.Err
			}
		}
		if run.kind == runFail && run.at == len(keyed) {
			return 0, fail(ctx)
		}
		return 0, nil
	}

	switch {
	case run.kind == runCrash || run.kind == runDieIn:
		for i := range run.at {
			if err = step(context.Background(), i).Err; err != nil {
				break
			}
		}
		if err == nil && run.kind == runDieIn {
			rs = append(rs, dieIn(t, store, w, keyed, run.at))
		}
	case run.style == "Do":
		_, err = rollback.Do(context.Background(), steps, opt)
	case run.style == "Begin":
		ctx, scope, berr := rollback.Begin(context.Background(), opt)
		require.NoError(t, berr)
		if _, err = steps(ctx); err != nil {
			_ = scope.Rollback(err)
		} else {
			err = scope.Commit()
		}
	default:
		var sagaSteps []rollback.Step[struct{}]
		for i := range keyed {
			if run.kind == runFail && i == run.at {
				break
			}
			st := rollback.Step[struct{}]{Name: fmt.Sprint("step ", i), Do: func(ctx context.Context, _ *struct{}) error {
				return step(ctx, i).Err
			}}
			if keyed[i] && sagaUndo(i) {
				st.Undo = func(context.Context, *struct{}) error { return w.delete(rs[i].Value) }
			}
			sagaSteps = append(sagaSteps, st)
		}
		if run.kind == runFail {
			sagaSteps = append(sagaSteps, rollback.Step[struct{}]{Name: "check", Do: func(ctx context.Context, _ *struct{}) error {
				return fail(ctx)
			}})
		}
		g, gerr := rollback.NewSaga(sagaSteps, opt)
		require.NoError(t, gerr)
		err = g.Run(context.Background(), &struct{}{})
	}
	if run.kind == runFail {
		require.ErrorIs(t, err, errPropFail)
	} else {
		require.NoError(t, err)
	}
	return rs, stackEvents.countAll(bulwark.IdempotencyForgotten), scopeEvents.countAll(bulwark.RollbackCompensated)
}

// dieIn is a process that dies inside step i, after the remote did its
// work: for a keyed step it holds the step's claim (which lapses after
// the Stack's lease, a minute) and sent the claim's remote key. Its
// result's Value is the effect made, "" if the step's result was stored
// (a replay runs nothing).
func dieIn(t require.TestingT, store idempotency.Store, w *propWorld, keyed []bool, i int) pipeline.Result[string] {
	ctx := context.Background()
	if !keyed[i] {
		id, err := w.create(ctx, i, false)
		require.NoError(t, err)
		return pipeline.Result[string]{Value: id}
	}
	key, err := idempotency.Key(fmt.Sprint("svc", i), "step", i) // the pipeline's key of the step
	require.NoError(t, err)
	rec, claimed, err := store.Claim(ctx, key, "a process that dies", "", idempotency.DefaultLease)
	require.NoError(t, err)
	if !claimed {
		require.Equal(t, idempotency.Completed, rec.State, "no claim of another process is left")
		return pipeline.Result[string]{}
	}
	id, err := w.create(idempotency.WithKey(ctx, idempotency.GenerationKey(key, rec.Generation)), i, true)
	require.NoError(t, err)
	return pipeline.Result[string]{Value: id}
}
