package sqlitejournal_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
	"github.com/bulwark-go/bulwark/rollback/sqlitejournal"
)

// crash runs the crash tests of journaltest.Crash on a journal file: a
// child process (this test binary, re-executed) runs a 3-step workflow
// and is killed with SIGKILL; the parent recovers.
var crash = journaltest.Crash{
	Env: "BULWARK_SQLITEJOURNAL_CRASH_CHILD",
	Open: func(_ context.Context, db string) (rollback.Journal, error) {
		return sqlitejournal.Open(db, sqlitejournal.Config{})
	},
}

func TestMain(m *testing.M) {
	crash.Child()
	os.Exit(m.Run())
}

// openFile opens the journal at db for the parent.
func openFile(t *testing.T, db string) *sqlitejournal.Journal {
	t.Helper()
	j, err := sqlitejournal.Open(db, sqlitejournal.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, j.Close()) })
	return j
}

// TestCrashRecovery kills a child process running a workflow at 100
// points (see journaltest.Crash.Recovery).
func TestCrashRecovery(t *testing.T) {
	db := filepath.Join(t.TempDir(), "journal.db")
	j := openFile(t, db)
	crash.Recovery(t, db, j, func() (n int, err error) {
		return n, j.DB().QueryRow(`SELECT count(*) FROM bulwark_workflows`).Scan(&n)
	})
}

// TestRecovererKilled: a recoverer child killed in each of its
// compensations; the next recoverer runs only the rest.
func TestRecovererKilled(t *testing.T) {
	db := filepath.Join(t.TempDir(), "journal.db")
	crash.RecovererKilled(t, db, openFile(t, db))
}

// TestRacingRecoverers: two recoverers, on their own connections, race
// over the same abandoned workflows; each is recovered by exactly one.
func TestRacingRecoverers(t *testing.T) {
	db := filepath.Join(t.TempDir(), "journal.db")
	crash.RacingRecoverers(t, openFile(t, db), func() rollback.Journal { return openFile(t, db) })
}
