package pgjournal_test

import (
	"context"
	"testing"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
	"github.com/bulwark-go/bulwark/rollback/pgjournal"
)

// crash runs the crash tests of journaltest.Crash on the tests' server: a
// child process (this test binary, re-executed) runs a 3-step workflow
// and is killed with SIGKILL; the parent recovers.
var crash = journaltest.Crash{
	Env: "BULWARK_PGJOURNAL_CRASH_CHILD",
	Open: func(ctx context.Context, url string) (rollback.Journal, error) {
		pool, err := newPool(ctx, url)
		if err != nil {
			return nil, err
		}
		return pgjournal.New(pool), nil
	},
}

// TestCrashRecovery kills a child process running a workflow at 100
// points (see journaltest.Crash.Recovery).
func TestCrashRecovery(t *testing.T) {
	pool := open(t)
	crash.Recovery(t, srv.url(), pgjournal.New(pool), func() (n int, err error) {
		return n, pool.QueryRow(t.Context(), `SELECT count(*) FROM bulwark_workflows`).Scan(&n)
	})
}

// TestRecovererKilled: a recoverer child killed in each of its
// compensations; the next recoverer runs only the rest.
func TestRecovererKilled(t *testing.T) {
	pool := open(t)
	crash.RecovererKilled(t, srv.url(), pgjournal.New(pool))
}

// TestRacingRecoverers: two recoverers, on their own pools, race over the
// same abandoned workflows; each is recovered by exactly one.
func TestRacingRecoverers(t *testing.T) {
	owner := pgjournal.New(open(t))
	crash.RacingRecoverers(t, owner, func() rollback.Journal {
		pool, err := newPool(t.Context(), srv.url())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return pgjournal.New(pool)
	})
}
