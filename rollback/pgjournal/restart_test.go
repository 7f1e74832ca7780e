package pgjournal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
	"github.com/bulwark-go/bulwark/rollback/pgjournal"
)

// undoArgs are the arguments of the restart test's compensation.
type undoArgs struct {
	Log  string `json:"log"`
	Step int    `json:"step"`
}

// PostgreSQL stops in the middle of a workflow: the owner's next journal
// write fails and the owner sees it (the call fails with ErrJournal); its
// rollback cannot prove it still holds the lease (the check before each
// compensation is a journal write), so it runs nothing and reports the
// compensations as left to a recoverer. Nothing is lost: once the server
// is back, a recoverer finds the workflow with its compensations
// unsettled and runs each once, and the journal ends empty.
func TestServerRestartMidWorkflow(t *testing.T) {
	s := needServer(t)
	pool := open(t)
	j := pgjournal.New(pool)
	logPath := filepath.Join(t.TempDir(), "effects.log")
	reg := rollback.NewRegistry()
	undo, err := rollback.Register(reg, "undo", func(_ context.Context, a undoArgs) error {
		b, err := os.ReadFile(a.Log)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), fmt.Sprintf("do %d\n", a.Step)) || strings.Contains(string(b), fmt.Sprintf("undo %d\n", a.Step)) {
			return rollback.ErrNoEffect // never done, or undone already
		}
		journaltest.AppendLine(a.Log, fmt.Sprint("undo ", a.Step))
		return nil
	})
	require.NoError(t, err)
	lease := 300 * time.Millisecond
	cfg := rollback.Config{Journal: j, Registry: reg, Owner: "owner", Lease: lease, Attempts: 1}
	restarted := false
	defer func() {
		if !restarted {
			_ = s.start()
		}
	}()
	_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		for i := 1; i <= 3; i++ {
			p, err := undo.Before(ctx, undoArgs{Log: logPath, Step: i})
			if err != nil {
				return 0, err
			}
			journaltest.AppendLine(logPath, fmt.Sprint("do ", i))
			if i == 2 {
				require.NoError(t, s.stop()) // PostgreSQL goes down mid-step
			}
			if err := p.Confirm(ctx); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}, rollback.WithConfig(cfg))
	require.Error(t, err)
	assert.ErrorIs(t, err, rollback.ErrJournal, "the owner sees the failed write")
	var rbErr *rollback.Error
	require.ErrorAs(t, err, &rbErr)
	assert.ErrorIs(t, rbErr.Journal, rollback.ErrJournal, "and that its rollback could not check its lease")
	assert.Equal(t, []string{"undo", "undo"}, rbErr.Skipped, "left to a recoverer")
	assert.Equal(t, map[string]int{"do 1": 1, "do 2": 1}, journaltest.ReadLog(t, logPath), "nothing undone in process")

	require.NoError(t, s.start())
	restarted = true
	time.Sleep(lease + lease/2)
	var rep rollback.RecoveryReport
	require.Eventually(t, func() bool { // the pool reconnects
		rep, err = rollback.Recover(t.Context(), j, reg, rollback.WithConfig(rollback.Config{Owner: "recoverer"}))
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "last error: %v", err)
	require.Len(t, rep.Workflows, 1, "nothing is lost: the workflow is in the journal")
	w := rep.Workflows[0]
	assert.Equal(t, "owner", w.PreviousOwner)
	assert.Equal(t, []string{"undo", "undo"}, w.Compensated, "both compensations ran, once")
	assert.True(t, w.Finished)
	assert.Equal(t, map[string]int{"do 1": 1, "do 2": 1, "undo 2": 1, "undo 1": 1}, journaltest.ReadLog(t, logPath))
	var left int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM bulwark_workflows`).Scan(&left))
	assert.Zero(t, left)
}
