package sqlitejournal_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/sqlitejournal"
)

// The crash tests run a 3-step workflow in a child process (this test
// binary, re-executed with crashEnv set), kill it with SIGKILL at a chosen
// or random point, and recover in the parent. Effects and compensations
// are counted in a side-effect log outside bulwark: a plain file written
// with O_APPEND and fsync, one line per effect.

const (
	crashEnv   = "BULWARK_SQLITEJOURNAL_CRASH_CHILD"
	crashLease = 100 * time.Millisecond
)

func TestMain(m *testing.M) {
	if os.Getenv(crashEnv) != "" {
		crashChild()
		return
	}
	os.Exit(m.Run())
}

// undoArgs are the arguments of the test's compensation.
type undoArgs struct {
	Log  string `json:"log"`
	Step int    `json:"step"`
}

// appendLine writes line to the log at path, durably.
func appendLine(path, line string) {
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

// readLog counts the lines of the log at path.
func readLog(t testing.TB, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int{}
	}
	require.NoError(t, err)
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

// registry returns a registry holding the test's compensation "undo": it
// undoes step args.Step if its effect is in the log (or reports
// ErrNoEffect), and, in the child, dies right after when killAt names it.
func registry(killAt string) (*rollback.Registry, rollback.Compensation[undoArgs]) {
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
			appendLine(a.Log, fmt.Sprint("noeffect ", a.Step))
			return rollback.ErrNoEffect
		}
		appendLine(a.Log, fmt.Sprint("undo ", a.Step))
		return nil
	})
	if err != nil {
		panic(err)
	}
	return reg, comp
}

// crashChild runs one workflow, killing itself at CRASH_POINT.
func crashChild() {
	db, logPath, point, outcome := os.Getenv("CRASH_DB"), os.Getenv("CRASH_LOG"), os.Getenv("CRASH_POINT"), os.Getenv("CRASH_OUTCOME")
	pause := os.Getenv("CRASH_PAUSE") != ""
	j, err := sqlitejournal.Open(db, sqlitejournal.Config{})
	if err != nil {
		panic(err)
	}
	reg, comp := registry(point)
	if os.Getenv("CRASH_MODE") == "recover" {
		// This child is a recoverer, killed in its compensation at point.
		fmt.Println("ready")
		_, err := rollback.Recover(context.Background(), j, reg, rollback.WithConfig(rollback.Config{
			Owner: "recovering-child", Lease: crashLease, Timeout: -1, InitialInterval: time.Millisecond,
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
	cfg := rollback.Config{Journal: j, Registry: reg, Owner: fmt.Sprint("child-", os.Getpid()), Lease: crashLease, InitialInterval: time.Millisecond}
	_, err = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
		for i := 1; i <= 3; i++ {
			p, err := comp.Before(ctx, undoArgs{Log: logPath, Step: i})
			if err != nil {
				return 0, err
			}
			at(fmt.Sprint("before-", i))
			appendLine(logPath, fmt.Sprint("do ", i))
			at(fmt.Sprint("during-", i))
			if err := p.Confirm(ctx); err != nil {
				return 0, err
			}
			at(fmt.Sprint("after-", i))
		}
		if outcome == "fail" {
			return 0, errors.New("step 3 declined")
		}
		at("before-commit")
		return 0, nil
	}, rollback.WithConfig(cfg))
	if err == nil {
		appendLine(logPath, "committed")
	} else {
		appendLine(logPath, "rolledback")
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

// points are the kill points of the two outcomes; "none" runs to the end.
var failPoints = []string{
	"before-1", "during-1", "after-1", "before-2", "during-2", "after-2",
	"before-3", "during-3", "undo-3", "undo-2", "undo-1", "none",
}

var succeedPoints = []string{"before-1", "during-2", "after-3", "before-commit", "none"}

// runChild runs r in a child process and waits until it has exited.
func runChild(t *testing.T, db, logPath string, r crashRun) (killed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"=1", "CRASH_DB="+db, "CRASH_LOG="+logPath,
		"CRASH_POINT="+r.point, "CRASH_OUTCOME="+r.outcome, "CRASH_MODE="+r.mode)
	if r.after > 0 {
		cmd.Env = append(cmd.Env, "CRASH_PAUSE=1")
	}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	if err == nil && line == "ready\n" && r.after > 0 {
		time.Sleep(r.after)
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws, ok := ee.Sys().(syscall.WaitStatus)
		require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child %v: %v", r, err)
		return true
	}
	require.NoError(t, err, "child %v", r)
	return false
}

// checkRun checks the side-effect log of a run after recovery: no
// orphaned effect, every compensation ran exactly once, except the one
// the child was running when it was killed, which ran at most twice.
func checkRun(t *testing.T, logPath string, r crashRun, killed bool) {
	t.Helper()
	n := readLog(t, logPath)
	if n["committed"] == 1 {
		assert.Equal(t, map[string]int{"do 1": 1, "do 2": 1, "do 3": 1, "committed": 1}, n, "run %v: committed, nothing undone", r)
		return
	}
	twice := 0
	for i := 1; i <= 3; i++ {
		do, undo, none := n[fmt.Sprint("do ", i)], n[fmt.Sprint("undo ", i)], n[fmt.Sprint("noeffect ", i)]
		assert.LessOrEqual(t, do, 1, "run %v: step %d done twice", r, i)
		if do == 0 {
			assert.Zero(t, undo, "run %v: step %d undone without its effect", r, i)
			assert.LessOrEqual(t, none, 1, "run %v: step %d", r, i)
			continue
		}
		assert.Zero(t, none, "run %v: step %d", r, i)
		switch {
		case undo == 0:
			t.Errorf("run %v: step %d orphaned: its effect was never undone (log %v)", r, i, n)
		case undo == 2:
			twice++
			if r.point != "" && r.point != "none" {
				assert.Equal(t, fmt.Sprint("undo-", i), r.point, "run %v: step %d undone twice but not interrupted", r, i)
			}
		case undo > 2:
			t.Errorf("run %v: step %d undone %d times", r, i, undo)
		}
	}
	assert.LessOrEqual(t, twice, 1, "run %v: more than one compensation ran twice (log %v)", r, n)
	if strings.HasPrefix(r.point, "undo-") {
		assert.Equal(t, 1, twice, "run %v: the interrupted compensation runs again (log %v)", r, n)
	}
	if !killed {
		assert.Equal(t, 1, n["rolledback"], "run %v: the child rolled back itself", r)
	}
}

// TestCrashRecovery kills a child process running a workflow at 100
// points: every kill point of both outcomes at least once, then random
// ones, a third of them timed (SIGKILL from the parent at a random
// moment, possibly in the middle of a journal write).
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 100 processes")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "journal.db")
	j, err := sqlitejournal.Open(db, sqlitejournal.Config{})
	require.NoError(t, err)
	defer j.Close()
	reg, _ := registry("")

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
		killed := runChild(t, db, logPath, r)
		if killed {
			killedRuns++
		}
		time.Sleep(crashLease + crashLease/2) // the dead owner's lease expires
		rep, err := rollback.Recover(t.Context(), j, reg, rollback.WithConfig(rollback.Config{Owner: "parent", InitialInterval: time.Millisecond}))
		require.NoError(t, err, "run %v", r)
		for _, w := range rep.Workflows {
			assert.True(t, w.Finished, "run %v: %+v", r, w)
			assert.Empty(t, w.Failures, "run %v", r)
		}
		if killed && r.point != "" && r.point != "none" && r.point != "after-3" {
			assert.Len(t, rep.Workflows, 1, "run %v: the dead child's workflow is recovered", r)
		}
		checkRun(t, logPath, r, killed)
	}
	var left int
	require.NoError(t, j.DB().QueryRow(`SELECT count(*) FROM bulwark_workflows`).Scan(&left))
	assert.Zero(t, left, "every workflow finished")
	t.Logf("%d runs, %d killed", len(runs), killedRuns)
}

// TestRecovererKilled: the workflow's process dies after its three
// steps, then the first recoverer (a child process too) dies while
// undoing step 3, 2 or 1. The next recoverer runs only what is left: the
// interrupted compensation runs twice, the others once.
func TestRecovererKilled(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "journal.db")
	j, err := sqlitejournal.Open(db, sqlitejournal.Config{})
	require.NoError(t, err)
	defer j.Close()
	reg, _ := registry("")
	for _, killAt := range []string{"undo-3", "undo-2", "undo-1"} {
		logPath := filepath.Join(dir, "effects-"+killAt+".log")
		require.True(t, runChild(t, db, logPath, crashRun{point: "after-3", outcome: "fail"}))
		time.Sleep(crashLease + crashLease/2)
		require.True(t, runChild(t, db, logPath, crashRun{point: killAt, mode: "recover"}), "the recoverer dies")
		time.Sleep(crashLease + crashLease/2)
		rep, err := rollback.Recover(t.Context(), j, reg, rollback.WithConfig(rollback.Config{Owner: "parent"}))
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		assert.True(t, strings.HasPrefix(rep.Workflows[0].PreviousOwner, "recovering-child/"), rep.Workflows[0].PreviousOwner)
		want := map[string]int{"do 1": 1, "do 2": 1, "do 3": 1, "undo 1": 1, "undo 2": 1, "undo 3": 1}
		want["undo "+killAt[len("undo-"):]] = 2
		assert.Equal(t, want, readLog(t, logPath), "killed at %s", killAt)
	}
}

// TestRacingRecoverers: two recoverers, on their own connections, race
// over the same abandoned workflows; each is recovered by exactly one and
// each compensation runs once.
func TestRacingRecoverers(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "journal.db")
	owner, err := sqlitejournal.Open(db, sqlitejournal.Config{})
	require.NoError(t, err)
	defer owner.Close()
	reg, comp := registry("")
	const workflows = 20
	logPath := filepath.Join(dir, "effects.log")
	cfg := rollback.Config{Journal: owner, Registry: reg, Owner: "dead", Lease: 50 * time.Millisecond}
	for w := range workflows {
		ctx, _, err := rollback.Begin(t.Context(), rollback.WithConfig(cfg))
		require.NoError(t, err)
		for s := 1; s <= 2; s++ {
			step := w*10 + s
			require.NoError(t, comp.OnRollback(ctx, undoArgs{Log: logPath, Step: step}))
			appendLine(logPath, fmt.Sprint("do ", step))
		}
		// The owner dies: the scope never ends.
	}
	time.Sleep(100 * time.Millisecond)

	reps := make([]rollback.RecoveryReport, 2)
	var wg sync.WaitGroup
	for r := range reps {
		j, err := sqlitejournal.Open(db, sqlitejournal.Config{})
		require.NoError(t, err)
		defer j.Close()
		wg.Go(func() {
			var err error
			reps[r], err = rollback.Recover(t.Context(), j, reg, rollback.WithConfig(rollback.Config{Owner: fmt.Sprint("recoverer-", r)}))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, rep := range reps {
		for _, w := range rep.Workflows {
			seen[w.ID]++
			assert.True(t, w.Finished)
		}
	}
	assert.Len(t, seen, workflows)
	for id, n := range seen {
		assert.Equal(t, 1, n, "workflow %s recovered %d times", id, n)
	}
	n := readLog(t, logPath)
	for w := range workflows {
		for s := 1; s <= 2; s++ {
			assert.Equal(t, 1, n[fmt.Sprint("undo ", w*10+s)], "step %d", w*10+s)
		}
	}
	t.Logf("recoverer 0 took %d workflows, recoverer 1 took %d", len(reps[0].Workflows), len(reps[1].Workflows))
}
