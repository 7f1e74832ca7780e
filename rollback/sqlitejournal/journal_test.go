package sqlitejournal_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
	"github.com/bulwark-go/bulwark/rollback/sqlitejournal"
)

func open(t *testing.T) *sqlitejournal.Journal {
	t.Helper()
	j, err := sqlitejournal.Open(filepath.Join(t.TempDir(), "journal.db"), sqlitejournal.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, j.Close()) })
	return j
}

func TestJournalContract(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) rollback.Journal { return open(t) }, journaltest.Options{Unit: 100 * time.Millisecond})
}

func TestOpenInvalid(t *testing.T) {
	_, err := sqlitejournal.Open("", sqlitejournal.Config{})
	require.ErrorIs(t, err, sqlitejournal.ErrInvalid)
	_, err = sqlitejournal.Open("x.db", sqlitejournal.Config{BusyTimeout: -1})
	require.ErrorIs(t, err, sqlitejournal.ErrInvalid)
	require.Contains(t, err.Error(), "Config.BusyTimeout")
}

func TestWALMode(t *testing.T) {
	j := open(t)
	var mode string
	require.NoError(t, j.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode))
	require.Equal(t, "wal", mode)
	var sync int
	require.NoError(t, j.DB().QueryRow(`PRAGMA synchronous`).Scan(&sync))
	require.Equal(t, 2, sync, "FULL")
}
