// Package sqlitejournal is a rollback.Journal in one SQLite file: the
// embedded default for durable compensations. It uses the pure-Go driver
// modernc.org/sqlite, so a program needs no C toolchain and no server.
//
// The database is opened in WAL mode with synchronous=FULL (by default):
// every journal write is one transaction, made durable by the commit's
// fsync, before the call returns. Many processes on one machine may share
// the file (SQLite's locking serializes the writes; a busy file is waited
// for up to Config.BusyTimeout); leases are on each process's clock
// (time.Now), so the processes must share a clock, as on one machine.
// Claims run in an IMMEDIATE transaction: of concurrent recoverers,
// exactly one gets each abandoned workflow.
//
//	j, err := sqlitejournal.Open("workflows.db", sqlitejournal.Config{})
//	if err != nil { ... }
//	defer j.Close()
//	cfg := rollback.Config{Journal: j, Registry: reg, Owner: rollback.NewOwnerID()}
package sqlitejournal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"modernc.org/sqlite"

	"github.com/bulwark-go/bulwark/internal/sat"
	"github.com/bulwark-go/bulwark/rollback"
)

// Schema creates the journal's tables if they do not exist; [Open] runs
// it. It is exported for users who manage their schema themselves.
const Schema = `
CREATE TABLE IF NOT EXISTS bulwark_workflows (
	id          TEXT    PRIMARY KEY,
	owner       TEXT    NOT NULL,
	lease_until INTEGER NOT NULL -- unix nanoseconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bulwark_workflows_owner ON bulwark_workflows (owner);
CREATE INDEX IF NOT EXISTS bulwark_workflows_lease ON bulwark_workflows (lease_until);
CREATE TABLE IF NOT EXISTS bulwark_compensations (
	workflow  TEXT    NOT NULL,
	seq       INTEGER NOT NULL,
	name      TEXT    NOT NULL,
	args      BLOB    NOT NULL,
	confirmed INTEGER NOT NULL,
	status    INTEGER NOT NULL,
	PRIMARY KEY (workflow, seq)
) WITHOUT ROWID;
`

// Config configures [Open]. The zero value is ready to use.
type Config struct {
	// BusyTimeout is how long a write waits for a file locked by another
	// connection or process before failing. 0 means 10s; negative is
	// invalid.
	BusyTimeout time.Duration

	// NoSync sets synchronous=NORMAL instead of FULL: in WAL mode a
	// commit then survives a crash of the process but maybe not of the
	// machine (power loss), and costs no fsync. false (the default)
	// fsyncs every commit.
	NoSync bool
}

// ErrInvalid is wrapped by the errors of [Open] for a bad path or Config.
var ErrInvalid = errors.New("sqlitejournal: invalid")

// Journal is a rollback.Journal in a SQLite file. It is safe for
// concurrent use by many goroutines, and by many processes sharing the
// file on one machine. Close it when done.
type Journal struct {
	db   *sql.DB // synchronous=FULL (or NORMAL with Config.NoSync)
	lazy *sql.DB // synchronous=NORMAL: for Confirm, whose loss is harmless
}

var _ rollback.Journal = (*Journal)(nil)

// Open opens (creating if needed) the journal in the SQLite file at path,
// in WAL mode, and creates its tables. It returns an error wrapping
// ErrInvalid for an empty path or a negative Config field, and the
// driver's error if the file cannot be opened.
func Open(path string, cfg Config) (*Journal, error) {
	switch {
	case path == "":
		return nil, fmt.Errorf("%w path: empty", ErrInvalid)
	case cfg.BusyTimeout < 0:
		return nil, fmt.Errorf("%w Config.BusyTimeout: %v (must be 0 or more)", ErrInvalid, cfg.BusyTimeout)
	}
	busy := cfg.BusyTimeout
	if busy == 0 {
		busy = 10 * time.Second
	}
	sync := "FULL"
	if cfg.NoSync {
		sync = "NORMAL"
	}
	dsn := func(sync string) string {
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", max(sat.Millis(busy), 1)))
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+sync+")")
		q.Add("_txlock", "immediate")
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	db, err := sql.Open("sqlite", dsn(sync))
	if err != nil {
		return nil, fmt.Errorf("sqlitejournal: opening %s: %w", path, err)
	}
	if _, err := db.Exec(Schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlitejournal: creating the tables in %s: %w", path, err)
	}
	lazy, err := sql.Open("sqlite", dsn("NORMAL"))
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlitejournal: opening %s: %w", path, err)
	}
	return &Journal{db: db, lazy: lazy}, nil
}

// Close closes the database. Calls after Close fail.
func (j *Journal) Close() error { return errors.Join(j.lazy.Close(), j.db.Close()) }

// DB returns the underlying database, for inspection and tests.
func (j *Journal) DB() *sql.DB { return j.db }

// until returns the end of a lease starting now, in unix nanoseconds,
// saturating.
func until(now time.Time, lease time.Duration) int64 {
	return sat.AddNanos(now.UnixNano(), max(lease, 0))
}

func lost(id string) error {
	return fmt.Errorf("%w: workflow %q", rollback.ErrLeaseLost, id)
}

// isConstraint reports whether err is a SQLite constraint violation.
func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 19 // SQLITE_CONSTRAINT
}

// tx runs fn in an IMMEDIATE transaction of db and commits it.
func tx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// hold renews the lease of workflow id if owner holds it.
func hold(ctx context.Context, tx *sql.Tx, owner, id string, lease time.Duration) error {
	res, err := tx.ExecContext(ctx, `UPDATE bulwark_workflows SET lease_until = ? WHERE id = ? AND owner = ?`,
		until(time.Now(), lease), id, owner)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return lost(id)
	}
	return nil
}

// Begin implements rollback.Journal.
func (j *Journal) Begin(ctx context.Context, id, owner string, lease time.Duration) error {
	_, err := j.db.ExecContext(ctx, `INSERT INTO bulwark_workflows (id, owner, lease_until) VALUES (?, ?, ?)`,
		id, owner, until(time.Now(), lease))
	if isConstraint(err) {
		return fmt.Errorf("%w: workflow %q exists", rollback.ErrInvalid, id)
	}
	return err
}

// Record implements rollback.Journal: one transaction.
func (j *Journal) Record(ctx context.Context, owner, id string, e rollback.Entry, lease time.Duration) error {
	return tx(ctx, j.db, func(tx *sql.Tx) error {
		if err := hold(ctx, tx, owner, id, lease); err != nil {
			return err
		}
		args := e.Args
		if args == nil {
			args = []byte{}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO bulwark_compensations (workflow, seq, name, args, confirmed, status) VALUES (?, ?, ?, ?, ?, 0)`,
			id, e.Seq, e.Name, args, e.Confirmed)
		if isConstraint(err) {
			return fmt.Errorf("%w: workflow %q already has entry %d", rollback.ErrInvalid, id, e.Seq)
		}
		return err
	})
}

// update runs an UPDATE of entry seq of a workflow owner holds.
func update(ctx context.Context, db *sql.DB, owner, id string, seq int64, lease time.Duration, set string, v any) error {
	return tx(ctx, db, func(tx *sql.Tx) error {
		if err := hold(ctx, tx, owner, id, lease); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE bulwark_compensations SET `+set+` = ? WHERE workflow = ? AND seq = ?`, v, id, seq)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: workflow %q has no entry %d", rollback.ErrInvalid, id, seq)
		}
		return nil
	})
}

// Confirm implements rollback.Journal: one transaction, committed
// without an fsync of its own (synchronous=NORMAL): it survives a crash
// of the process at once, and a crash of the machine with the next
// write's fsync. A lost confirmation is harmless: the entry stays
// pending, and a pending compensation runs at recovery all the same.
// So a durable step costs one fsynced write (Record) and one that rides
// on the next fsync.
func (j *Journal) Confirm(ctx context.Context, owner, id string, seq int64, lease time.Duration) error {
	return update(ctx, j.lazy, owner, id, seq, lease, "confirmed", true)
}

// Settle implements rollback.Journal: one transaction.
func (j *Journal) Settle(ctx context.Context, owner, id string, seq int64, st rollback.Status, lease time.Duration) error {
	return update(ctx, j.db, owner, id, seq, lease, "status", int(st))
}

// Finish implements rollback.Journal.
func (j *Journal) Finish(ctx context.Context, owner, id string) error {
	return tx(ctx, j.db, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM bulwark_workflows WHERE id = ? AND owner = ?`, id, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return lost(id)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM bulwark_compensations WHERE workflow = ?`, id)
		return err
	})
}

// Release implements rollback.Journal.
func (j *Journal) Release(ctx context.Context, owner, id string, after time.Duration) error {
	return tx(ctx, j.db, func(tx *sql.Tx) error { return hold(ctx, tx, owner, id, after) })
}

// Renew implements rollback.Journal: one UPDATE for all the owner's
// workflows whose lease has not expired.
func (j *Journal) Renew(ctx context.Context, owner string, lease time.Duration) (int, error) {
	now := time.Now()
	res, err := j.db.ExecContext(ctx, `UPDATE bulwark_workflows SET lease_until = ? WHERE owner = ? AND lease_until > ?`,
		until(now, lease), owner, now.UnixNano())
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Claim implements rollback.Journal, in one IMMEDIATE transaction: the
// abandoned workflow whose lease expired first.
func (j *Journal) Claim(ctx context.Context, recoverer string, lease time.Duration) (c rollback.Claimed, ok bool, err error) {
	err = tx(ctx, j.db, func(tx *sql.Tx) error {
		now := time.Now()
		err := tx.QueryRowContext(ctx, `SELECT id, owner FROM bulwark_workflows WHERE lease_until <= ? ORDER BY lease_until, id LIMIT 1`,
			now.UnixNano()).Scan(&c.ID, &c.PreviousOwner)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bulwark_workflows SET owner = ?, lease_until = ? WHERE id = ?`,
			recoverer, until(now, lease), c.ID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT seq, name, args, confirmed, status FROM bulwark_compensations
			WHERE workflow = ? AND status IN (?, ?) ORDER BY seq`, c.ID, int(rollback.StatusPending), int(rollback.StatusFailed))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e  rollback.Entry
				st int
			)
			if err := rows.Scan(&e.Seq, &e.Name, &e.Args, &e.Confirmed, &st); err != nil {
				return err
			}
			e.Status = rollback.Status(st)
			c.Entries = append(c.Entries, e)
		}
		ok = true
		return rows.Err()
	})
	if err != nil || !ok {
		return rollback.Claimed{}, false, err
	}
	return c, true, nil
}
