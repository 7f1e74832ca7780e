package pgjournal_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
	"github.com/bulwark-go/bulwark/rollback/pgjournal"
)

// open returns a pool on the test server with empty journal tables.
func open(t testing.TB) *pgxpool.Pool {
	t.Helper()
	s := needServer(t)
	pool, err := newPool(context.Background(), s.url())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pgjournal.Migrate(context.Background(), pool))
	_, err = pool.Exec(context.Background(), `TRUNCATE bulwark_workflows CASCADE`)
	require.NoError(t, err)
	return pool
}

func TestJournalContract(t *testing.T) {
	needServer(t)
	journaltest.Run(t, func(t *testing.T) rollback.Journal { return pgjournal.New(open(t)) }, journaltest.Options{Unit: 100 * time.Millisecond})
}

func TestMigrateTwice(t *testing.T) {
	pool := open(t)
	require.NoError(t, pgjournal.Migrate(t.Context(), pool), "idempotent")
	require.ErrorIs(t, pgjournal.Migrate(t.Context(), nil), pgjournal.ErrInvalid)
}

// Leases run on the server's clock: a lease far in the future saturates
// instead of failing.
func TestForeverLease(t *testing.T) {
	j := pgjournal.New(open(t))
	require.NoError(t, j.Begin(t.Context(), "w", "o", time.Duration(1<<63-1)))
	n, err := j.Renew(t.Context(), "o", time.Duration(1<<63-1))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, found, err := j.Claim(t.Context(), "r", time.Hour)
	require.NoError(t, err)
	require.False(t, found)
}
