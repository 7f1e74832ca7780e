//go:build unix

package journaltest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/rollback"
)

// Crash runs the crash tests of a [rollback.Journal] implementation: a
// child process (the test binary, re-executed) runs a 3-step workflow on
// the journal and is killed with SIGKILL at a chosen or random point
// (before, during and after each step, in its own compensations and
// guards, at a random moment), and a recoverer in the parent runs the
// rest. Each step is a keyed step as the pipeline makes it: a durable
// guard (the forgetting of its key), then its compensation, journaled
// before the step and confirmed after. Effects, compensations and guards
// are counted in a side-effect log outside bulwark (a plain file written
// with O_APPEND and fsync, one line per effect): zero orphaned effects,
// every compensation exactly once except the one running when its
// process was killed, which may run once more, and a step's key
// forgotten exactly when its compensation ran, after it.
//
// A journal's tests call [Crash.Child] first in TestMain, then the
// tests' bodies:
//
//	var crash = journaltest.Crash{Env: "MYJOURNAL_CRASH_CHILD", Open: openJournal}
//
//	func TestMain(m *testing.M) {
//		crash.Child() // returns unless this process is a child
//		os.Exit(m.Run())
//	}
//
//	func TestCrashRecovery(t *testing.T) { crash.Recovery(t, target, j, countWorkflows) }
//
// Crash is unix-only (it sends SIGKILL). Its methods may be called
// concurrently; each starts child processes and waits for them.
type Crash struct {
	// Env is the environment variable that marks a child process: unique
	// to the test binary. Required.
	Env string
	// Open opens the journal at target (a file path, a URL: what the
	// tests pass as target) in a child process. Required.
	Open func(ctx context.Context, target string) (rollback.Journal, error)
	// Lease is the lease of the children's workflows and recoverers: the
	// parent waits 1.5 leases for a dead child's lease to expire. 0 means
	// 100ms.
	Lease time.Duration
}

func (c Crash) lease() time.Duration {
	if c.Lease > 0 {
		return c.Lease
	}
	return 100 * time.Millisecond
}

// undoArgs are the arguments of the crash tests' compensation.
type undoArgs struct {
	Log  string `json:"log"`
	Step int    `json:"step"`
}

// AppendLine appends line and a newline to the side-effect log at path,
// durably: the file is opened with O_APPEND, written, fsynced and closed,
// so that a line survives a SIGKILL right after AppendLine returns (and a
// line is never half-written by one of several processes sharing the
// log). It panics on an I/O error (it runs in child processes, where
// there is no *testing.T). It is safe for concurrent use.
func AppendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		panic(err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		panic(err)
	}
	if err := f.Sync(); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
}

// ReadLog counts the lines of the side-effect log at path (each distinct
// line, with how many times it occurs); a missing file is an empty log.
// It fails t on any other read error.
func ReadLog(t testing.TB, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			n[l]++
		}
	}
	return n
}

func kill() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // never returns
}

// crashRegistry returns a registry holding the compensation "undo": it
// undoes step args.Step if its effect is in the log (or reports
// ErrNoEffect), and the guard "forget", which logs that the step's
// idempotency key would be forgotten (as the pipeline's forgetting guard
// does once a keyed step is undone). In a child, each dies right after
// its log line when killAt names it (undo-N, forget-N).
func crashRegistry(killAt string) (*rollback.Registry, rollback.Compensation[undoArgs], rollback.Guard[undoArgs]) {
	reg := rollback.NewRegistry()
	comp, err := rollback.Register(reg, "undo", func(_ context.Context, a undoArgs) error {
		b, err := os.ReadFile(a.Log)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		defer func() {
			if killAt == fmt.Sprint("undo-", a.Step) {
				kill()
			}
		}()
		if !strings.Contains(string(b), fmt.Sprintf("do %d\n", a.Step)) {
			AppendLine(a.Log, fmt.Sprint("noeffect ", a.Step))
			return rollback.ErrNoEffect
		}
		AppendLine(a.Log, fmt.Sprint("undo ", a.Step))
		return nil
	})
	if err != nil {
		panic(err)
	}
	guard, err := rollback.RegisterGuard(reg, "forget", func(_ context.Context, a undoArgs) error {
		AppendLine(a.Log, fmt.Sprint("forget ", a.Step))
		if killAt == fmt.Sprint("forget-", a.Step) {
			kill()
		}
		return rollback.ErrNoEffect
	})
	if err != nil {
		panic(err)
	}
	return reg, comp, guard
}

// Child runs the child's part, and exits, when this process is a child
// started by the crash tests (c.Env is set); otherwise it returns at
// once. Call it first in TestMain.
func (c Crash) Child() {
	if os.Getenv(c.Env) == "" {
		return
	}
	target, logPath, point, outcome := os.Getenv("CRASH_TARGET"), os.Getenv("CRASH_LOG"), os.Getenv("CRASH_POINT"), os.Getenv("CRASH_OUTCOME")
	pause := os.Getenv("CRASH_PAUSE") != ""
	j, err := c.Open(context.Background(), target)
	if err != nil {
		panic(err)
	}
	lease := c.lease()
	reg, comp, guard := crashRegistry(point)
	if os.Getenv("CRASH_MODE") == "recover" {
		// This child is a recoverer, killed in its compensation at point.
		fmt.Println("ready")
		_, err := rollback.Recover(context.Background(), j, reg, rollback.WithConfig(rollback.Config{
			Owner: "recovering-child", Lease: lease, Timeout: -1, InitialInterval: time.Millisecond,
		}))
		if err != nil {
			panic(err)
		}
		os.Exit(0)
	}
	at := func(p string) {
		if p == point {
			kill()
		}
		if pause {
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Println("ready")
	cfg := rollback.Config{Journal: j, Registry: reg, Owner: fmt.Sprint("child-", os.Getpid()), Lease: lease, InitialInterval: time.Millisecond}
	_, err = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
		for i := 1; i <= 3; i++ {
			// A keyed step: the forgetting of its key is guarded by its
			// compensation, registered after it.
			args := undoArgs{Log: logPath, Step: i}
			g, err := guard.Before(ctx, args)
			if err != nil {
				return 0, err
			}
			p, err := comp.Before(ctx, args)
			if err != nil {
				return 0, err
			}
			at(fmt.Sprint("before-", i))
			AppendLine(logPath, fmt.Sprint("do ", i))
			at(fmt.Sprint("during-", i))
			if err := p.Confirm(ctx); err != nil {
				return 0, err
			}
			if err := g.Confirm(ctx); err != nil {
				return 0, err
			}
			at(fmt.Sprint("after-", i))
		}
		if outcome == "fail" {
			return 0, errors.New("step 3 declined")
		}
		at("before-commit")
		// From here the commit may finish in the journal before the
		// child can log it: a kill in between leaves "committing" alone.
		AppendLine(logPath, "committing")
		return 0, nil
	}, rollback.WithConfig(cfg))
	if err == nil {
		AppendLine(logPath, "committed")
	} else {
		AppendLine(logPath, "rolledback")
	}
	os.Exit(0)
}

// crashRun is one run of the crash test.
type crashRun struct {
	point   string        // a kill point, or "" for a timed kill or none
	outcome string        // fail or succeed
	after   time.Duration // timed kill: this long after the child is ready; 0: none
	mode    string        // "recover": the child recovers instead of running a workflow
}

func (r crashRun) String() string {
	if r.after > 0 {
		return fmt.Sprintf("%s/kill-after-%v", r.outcome, r.after)
	}
	return r.outcome + "/" + r.point
}

// The kill points of the two outcomes; "none" runs to the end.
var (
	failPoints = []string{
		"before-1", "during-1", "after-1", "before-2", "during-2", "after-2",
		"before-3", "during-3", "undo-3", "forget-3", "undo-2", "forget-2", "undo-1", "forget-1", "none",
	}
	succeedPoints = []string{"before-1", "during-2", "after-3", "before-commit", "none"}
)

// runChild runs r in a child process and waits until it has exited.
func (c Crash) runChild(t *testing.T, target, logPath string, r crashRun) (killed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), c.Env+"=1", "CRASH_TARGET="+target, "CRASH_LOG="+logPath,
		"CRASH_POINT="+r.point, "CRASH_OUTCOME="+r.outcome, "CRASH_MODE="+r.mode)
	if r.after > 0 {
		cmd.Env = append(cmd.Env, "CRASH_PAUSE=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err == nil && line == "ready\n" && r.after > 0 {
		time.Sleep(r.after)
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child %v: %v", r, err)
		}
		return true
	}
	if err != nil {
		t.Fatalf("child %v: %v", r, err)
	}
	return false
}

// checkRun checks the side-effect log of a run after recovery: no
// orphaned effect, every compensation ran exactly once, except the one
// the child was running when it was killed, which ran at most twice.
func checkRun(t *testing.T, logPath string, r crashRun, killed bool) {
	t.Helper()
	n := ReadLog(t, logPath)
	twice := checkForgets(t, logPath, r, n)
	if n["committed"] == 1 {
		if want := map[string]int{"do 1": 1, "do 2": 1, "do 3": 1, "committing": 1, "committed": 1}; !maps.Equal(n, want) {
			t.Errorf("run %v: committed, nothing undone: log %v, want %v", r, n, want)
		}
		return
	}
	if n["committing"] == 1 && maps.Equal(n, map[string]int{"do 1": 1, "do 2": 1, "do 3": 1, "committing": 1}) {
		// Killed after the commit finished in the journal and before the
		// child logged it (a timed kill): committed, nothing to undo, and
		// nothing left in the journal for a recoverer.
		if !killed {
			t.Errorf("run %v: committing but neither committed nor killed (log %v)", r, n)
		}
		return
	}
	for i := 1; i <= 3; i++ {
		do, undo, none := n[fmt.Sprint("do ", i)], n[fmt.Sprint("undo ", i)], n[fmt.Sprint("noeffect ", i)]
		if do > 1 {
			t.Errorf("run %v: step %d done %d times", r, i, do)
		}
		if do == 0 {
			if undo != 0 {
				t.Errorf("run %v: step %d undone without its effect (log %v)", r, i, n)
			}
			if none > 1 {
				t.Errorf("run %v: step %d: no-effect compensation ran %d times", r, i, none)
			}
			continue
		}
		if none != 0 {
			t.Errorf("run %v: step %d: no effect reported for a step that took effect (log %v)", r, i, n)
		}
		switch {
		case undo == 0:
			t.Errorf("run %v: step %d orphaned: its effect was never undone (log %v)", r, i, n)
		case undo == 2:
			twice++
			if r.point != "" && r.point != "none" && r.point != fmt.Sprint("undo-", i) {
				t.Errorf("run %v: step %d undone twice but not interrupted", r, i)
			}
		case undo > 2:
			t.Errorf("run %v: step %d undone %d times", r, i, undo)
		}
	}
	if twice > 1 {
		t.Errorf("run %v: more than one compensation ran twice (log %v)", r, n)
	}
	if (strings.HasPrefix(r.point, "undo-") || strings.HasPrefix(r.point, "forget-")) && twice != 1 {
		t.Errorf("run %v: the interrupted compensation runs again (log %v)", r, n)
	}
	if !killed && n["rolledback"] != 1 {
		t.Errorf("run %v: the child rolled back itself: log %v", r, n)
	}
}

// checkForgets checks the guards' lines of a run: the key of step i is
// forgotten (the line "forget i") when, and only when, its compensation
// ran (its effect was undone, or never happened), after it, once, or
// twice when the child was killed in that very guard (a kill point there,
// or a timed kill). It returns how many guards ran twice.
func checkForgets(t *testing.T, logPath string, r crashRun, n map[string]int) (twice int) {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i := 1; i <= 3; i++ {
		ran := slices.IndexFunc(lines, func(l string) bool {
			return l == fmt.Sprint("undo ", i) || l == fmt.Sprint("noeffect ", i)
		})
		forget := slices.Index(lines, fmt.Sprint("forget ", i))
		most := 1
		if r.point == fmt.Sprint("forget-", i) || r.after > 0 {
			most = 2
		}
		f := n[fmt.Sprint("forget ", i)]
		if f == 2 {
			twice++
		}
		switch {
		case ran < 0 && f > 0:
			t.Errorf("run %v: step %d's key forgotten, but nothing of the step was undone (log %v)", r, i, n)
		case ran >= 0 && f == 0:
			t.Errorf("run %v: step %d undone, but its key was never forgotten (log %v)", r, i, n)
		case f > most:
			t.Errorf("run %v: step %d's key forgotten %d times (log %v)", r, i, f, n)
		case f > 0 && forget < ran:
			t.Errorf("run %v: step %d's key forgotten before its compensation ran", r, i)
		}
	}
	return twice
}

// Recovery kills a child process running a workflow on the journal at
// target at 100 points: every kill point of both outcomes at least once,
// then random ones, a third of them timed (SIGKILL from the parent at a
// random moment, possibly in the middle of a journal write), and recovers
// each run with j, the parent's handle on the same journal. left counts
// the workflows left in the journal, which must be none at the end. It is
// skipped with -short.
func (c Crash) Recovery(t *testing.T, target string, j rollback.Journal, left func() (int, error)) {
	if testing.Short() {
		t.Skip("starts 100 processes")
	}
	dir := t.TempDir()
	reg, _, _ := crashRegistry("")
	lease := c.lease()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var runs []crashRun
	for _, p := range failPoints {
		runs = append(runs, crashRun{point: p, outcome: "fail"})
	}
	for _, p := range succeedPoints {
		runs = append(runs, crashRun{point: p, outcome: "succeed"})
	}
	for len(runs) < 100 {
		outcome := []string{"fail", "succeed"}[rng.IntN(2)]
		switch {
		case rng.IntN(3) == 0:
			runs = append(runs, crashRun{outcome: outcome, after: time.Duration(1+rng.IntN(40)) * time.Millisecond})
		case outcome == "fail":
			runs = append(runs, crashRun{point: failPoints[rng.IntN(len(failPoints))], outcome: outcome})
		default:
			runs = append(runs, crashRun{point: succeedPoints[rng.IntN(len(succeedPoints))], outcome: outcome})
		}
	}
	killedRuns := 0
	for i, r := range runs {
		logPath := filepath.Join(dir, fmt.Sprintf("effects-%03d.log", i))
		killed := c.runChild(t, target, logPath, r)
		if killed {
			killedRuns++
		}
		time.Sleep(lease + lease/2) // the dead owner's lease expires
		rep, err := rollback.Recover(t.Context(), j, reg, rollback.WithConfig(rollback.Config{Owner: "parent", InitialInterval: time.Millisecond}))
		if err != nil {
			t.Fatalf("run %v: %v", r, err)
		}
		for _, w := range rep.Workflows {
			if !w.Finished || len(w.Failures) > 0 {
				t.Errorf("run %v: recovery left work: %+v", r, w)
			}
		}
		if killed && r.point != "" && r.point != "none" && r.point != "after-3" && len(rep.Workflows) != 1 {
			t.Errorf("run %v: the dead child's workflow is recovered: %d workflows", r, len(rep.Workflows))
		}
		checkRun(t, logPath, r, killed)
	}
	n, err := left()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d workflows left in the journal; want every workflow finished", n)
	}
	t.Logf("%d runs, %d killed", len(runs), killedRuns)
}

// RecovererKilled: the workflow's process dies after its three steps,
// then the first recoverer (a child process too) dies while undoing step
// 3, 2 or 1. The next recoverer (the parent, with j on target) runs only
// what is left: the interrupted compensation runs twice, the others once.
func (c Crash) RecovererKilled(t *testing.T, target string, j rollback.Journal) {
	dir := t.TempDir()
	reg, _, _ := crashRegistry("")
	lease := c.lease()
	for _, killAt := range []string{"undo-3", "undo-2", "undo-1"} {
		logPath := filepath.Join(dir, "effects-"+killAt+".log")
		if !c.runChild(t, target, logPath, crashRun{point: "after-3", outcome: "fail"}) {
			t.Fatalf("the workflow's child was not killed")
		}
		time.Sleep(lease + lease/2)
		if !c.runChild(t, target, logPath, crashRun{point: killAt, mode: "recover"}) {
			t.Fatalf("the recovering child was not killed at %s", killAt)
		}
		time.Sleep(lease + lease/2)
		rep, err := rollback.Recover(t.Context(), j, reg, rollback.WithConfig(rollback.Config{Owner: "parent"}))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Workflows) != 1 {
			t.Fatalf("killed at %s: recovered %d workflows, want 1", killAt, len(rep.Workflows))
		}
		if prev := rep.Workflows[0].PreviousOwner; !strings.HasPrefix(prev, "recovering-child/") {
			t.Errorf("killed at %s: previous owner %q, want the recovering child", killAt, prev)
		}
		want := map[string]int{"do 1": 1, "do 2": 1, "do 3": 1, "undo 1": 1, "undo 2": 1, "undo 3": 1,
			"forget 1": 1, "forget 2": 1, "forget 3": 1}
		want["undo "+killAt[len("undo-"):]] = 2
		if got := ReadLog(t, logPath); !maps.Equal(got, want) {
			t.Errorf("killed at %s: log %v, want %v", killAt, got, want)
		}
	}
}

// RacingRecoverers: two recoverers, each on its own handle from open,
// race over the same 20 workflows abandoned by an owner writing through
// owner; each is recovered by exactly one and each compensation runs once.
func (c Crash) RacingRecoverers(t *testing.T, owner rollback.Journal, open func() rollback.Journal) {
	dir := t.TempDir()
	reg, comp, _ := crashRegistry("")
	const workflows = 20
	logPath := filepath.Join(dir, "effects.log")
	cfg := rollback.Config{Journal: owner, Registry: reg, Owner: "dead", Lease: 50 * time.Millisecond}
	for w := range workflows {
		ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		for s := 1; s <= 2; s++ {
			step := w*10 + s
			if err := comp.OnRollback(ctx, undoArgs{Log: logPath, Step: step}); err != nil {
				t.Fatal(err)
			}
			AppendLine(logPath, fmt.Sprint("do ", step))
		}
		// The owner dies: the scope never ends.
	}
	time.Sleep(100 * time.Millisecond)

	reps := make([]rollback.RecoveryReport, 2)
	var wg sync.WaitGroup
	for r := range reps {
		j := open()
		wg.Go(func() {
			var err error
			reps[r], err = rollback.Recover(t.Context(), j, reg, rollback.WithConfig(rollback.Config{Owner: fmt.Sprint("recoverer-", r)}))
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, rep := range reps {
		for _, w := range rep.Workflows {
			seen[w.ID]++
			if !w.Finished {
				t.Errorf("workflow %s not finished: %+v", w.ID, w)
			}
		}
	}
	if len(seen) != workflows {
		t.Errorf("recovered %d workflows, want %d", len(seen), workflows)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("workflow %s recovered %d times", id, n)
		}
	}
	n := ReadLog(t, logPath)
	for w := range workflows {
		for s := 1; s <= 2; s++ {
			if got := n[fmt.Sprint("undo ", w*10+s)]; got != 1 {
				t.Errorf("step %d undone %d times, want 1", w*10+s, got)
			}
		}
	}
	t.Logf("recoverer 0 took %d workflows, recoverer 1 took %d", len(reps[0].Workflows), len(reps[1].Workflows))
}
