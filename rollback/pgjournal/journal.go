// Package pgjournal is a rollback.Journal in PostgreSQL (through pgx v5),
// for many processes on many machines sharing one journal.
//
// Leases run on the server's clock (now()), so the processes' clocks do
// not matter. Claims take the workflow row with FOR UPDATE SKIP LOCKED:
// concurrent recoverers never wait for each other, and exactly one gets
// each abandoned workflow. Every write is a single statement, one round
// trip; a durable step (Compensation.Before, Pending.Confirm) is two.
//
// The tables are created by [Migrate], or by running [Schema] with your
// own migration tool:
//
//	pool, err := pgxpool.New(ctx, "postgres://...")
//	if err != nil { ... }
//	if err := pgjournal.Migrate(ctx, pool); err != nil { ... }
//	cfg := rollback.Config{Journal: pgjournal.New(pool), Registry: reg, Owner: rollback.NewOwnerID()}
package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulwark-go/bulwark/rollback"
)

// Schema creates the journal's tables if they do not exist. [Migrate]
// runs it; run it yourself to manage the schema with your own tool. It is
// idempotent.
const Schema = `
CREATE TABLE IF NOT EXISTS bulwark_workflows (
	id          text        PRIMARY KEY,
	owner       text        NOT NULL,
	lease_until timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS bulwark_workflows_owner ON bulwark_workflows (owner);
CREATE INDEX IF NOT EXISTS bulwark_workflows_lease ON bulwark_workflows (lease_until);
CREATE TABLE IF NOT EXISTS bulwark_compensations (
	workflow  text     NOT NULL REFERENCES bulwark_workflows (id) ON DELETE CASCADE,
	seq       bigint   NOT NULL,
	name      text     NOT NULL,
	args      bytea    NOT NULL,
	confirmed boolean  NOT NULL,
	status    smallint NOT NULL,
	PRIMARY KEY (workflow, seq)
);
`

// Migrate creates the journal's tables in the pool's database if they do
// not exist (it runs [Schema]). It is safe to run at every start.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if pool == nil {
		return fmt.Errorf("%w Migrate pool: nil", ErrInvalid)
	}
	if _, err := pool.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("pgjournal: migrating: %w", err)
	}
	return nil
}

// ErrInvalid is wrapped by the errors of [Migrate] for a nil pool.
var ErrInvalid = errors.New("pgjournal: invalid")

// Journal is a rollback.Journal in PostgreSQL. It is safe for concurrent
// use by many goroutines and processes. It does not own its pool.
type Journal struct {
	pool *pgxpool.Pool
}

var _ rollback.Journal = (*Journal)(nil)

// New returns the journal in the pool's database; run [Migrate] (or
// [Schema]) once first. New panics on a nil pool, a programming error.
func New(pool *pgxpool.Pool) *Journal {
	if pool == nil {
		panic("pgjournal: New with a nil pool")
	}
	return &Journal{pool: pool}
}

// maxLease is the longest lease the journal keeps: 100 years, far inside
// timestamptz's range. Longer leases (up to math.MaxInt64) saturate.
const maxLease = 100 * 365 * 24 * time.Hour

// micros returns lease in microseconds, clamped to [0, maxLease].
func micros(lease time.Duration) int64 {
	return min(max(lease, 0), maxLease).Microseconds()
}

// leaseSQL is the end of a lease of $N microseconds on the server's clock.
func leaseSQL(n int) string {
	return fmt.Sprintf("now() + ($%d::bigint * interval '1 microsecond')", n)
}

func lost(id string) error {
	return fmt.Errorf("%w: workflow %q", rollback.ErrLeaseLost, id)
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Begin implements rollback.Journal.
func (j *Journal) Begin(ctx context.Context, id, owner string, lease time.Duration) error {
	_, err := j.pool.Exec(ctx, `INSERT INTO bulwark_workflows (id, owner, lease_until) VALUES ($1, $2, `+leaseSQL(3)+`)`,
		id, owner, micros(lease))
	if isUnique(err) {
		return fmt.Errorf("%w: workflow %q exists", rollback.ErrInvalid, id)
	}
	return err
}

// Record implements rollback.Journal: one statement.
func (j *Journal) Record(ctx context.Context, owner, id string, e rollback.Entry, lease time.Duration) error {
	args := e.Args
	if args == nil {
		args = []byte{}
	}
	tag, err := j.pool.Exec(ctx, `WITH w AS (
		UPDATE bulwark_workflows SET lease_until = `+leaseSQL(3)+` WHERE id = $1 AND owner = $2 RETURNING id)
		INSERT INTO bulwark_compensations (workflow, seq, name, args, confirmed, status)
		SELECT id, $4, $5, $6, $7, 0 FROM w`, id, owner, micros(lease), e.Seq, e.Name, args, e.Confirmed)
	switch {
	case isUnique(err):
		return fmt.Errorf("%w: workflow %q already has entry %d", rollback.ErrInvalid, id, e.Seq)
	case err != nil:
		return err
	case tag.RowsAffected() == 0:
		return lost(id)
	}
	return nil
}

// update sets one column of entry seq of a workflow owner holds, in one
// statement.
func (j *Journal) update(ctx context.Context, owner, id string, seq int64, lease time.Duration, set string, v any) error {
	var held, updated int
	err := j.pool.QueryRow(ctx, `WITH w AS (
		UPDATE bulwark_workflows SET lease_until = `+leaseSQL(3)+` WHERE id = $1 AND owner = $2 RETURNING id),
		c AS (UPDATE bulwark_compensations SET `+set+` = $5 WHERE workflow IN (SELECT id FROM w) AND seq = $4 RETURNING 1)
		SELECT (SELECT count(*) FROM w), (SELECT count(*) FROM c)`, id, owner, micros(lease), seq, v).Scan(&held, &updated)
	switch {
	case err != nil:
		return err
	case held == 0:
		return lost(id)
	case updated == 0:
		return fmt.Errorf("%w: workflow %q has no entry %d", rollback.ErrInvalid, id, seq)
	}
	return nil
}

// Confirm implements rollback.Journal: one statement.
func (j *Journal) Confirm(ctx context.Context, owner, id string, seq int64, lease time.Duration) error {
	return j.update(ctx, owner, id, seq, lease, "confirmed", true)
}

// Settle implements rollback.Journal: one statement.
func (j *Journal) Settle(ctx context.Context, owner, id string, seq int64, st rollback.Status, lease time.Duration) error {
	return j.update(ctx, owner, id, seq, lease, "status", int16(st))
}

// Finish implements rollback.Journal: the entries go with the workflow
// (ON DELETE CASCADE).
func (j *Journal) Finish(ctx context.Context, owner, id string) error {
	tag, err := j.pool.Exec(ctx, `DELETE FROM bulwark_workflows WHERE id = $1 AND owner = $2`, id, owner)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return lost(id)
	}
	return nil
}

// Release implements rollback.Journal.
func (j *Journal) Release(ctx context.Context, owner, id string, after time.Duration) error {
	tag, err := j.pool.Exec(ctx, `UPDATE bulwark_workflows SET lease_until = `+leaseSQL(3)+` WHERE id = $1 AND owner = $2`,
		id, owner, micros(after))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return lost(id)
	}
	return nil
}

// Renew implements rollback.Journal: one UPDATE for all the owner's
// workflows whose lease has not expired.
func (j *Journal) Renew(ctx context.Context, owner string, lease time.Duration) (int, error) {
	tag, err := j.pool.Exec(ctx, `UPDATE bulwark_workflows SET lease_until = `+leaseSQL(2)+` WHERE owner = $1 AND lease_until > now()`,
		owner, micros(lease))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// Claim implements rollback.Journal: the abandoned workflow whose lease
// expired first, taken with FOR UPDATE SKIP LOCKED in one statement, then
// its entries.
func (j *Journal) Claim(ctx context.Context, recoverer string, lease time.Duration) (rollback.Claimed, bool, error) {
	var c rollback.Claimed
	err := j.pool.QueryRow(ctx, `WITH c AS (
		SELECT id, owner FROM bulwark_workflows WHERE lease_until <= now()
		ORDER BY lease_until, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		UPDATE bulwark_workflows w SET owner = $1, lease_until = `+leaseSQL(2)+`
		FROM c WHERE w.id = c.id RETURNING w.id, c.owner`, recoverer, micros(lease)).Scan(&c.ID, &c.PreviousOwner)
	if errors.Is(err, pgx.ErrNoRows) {
		return rollback.Claimed{}, false, nil
	}
	if err != nil {
		return rollback.Claimed{}, false, err
	}
	// The workflow is the recoverer's now: only it writes the entries.
	rows, err := j.pool.Query(ctx, `SELECT seq, name, args, confirmed, status FROM bulwark_compensations
		WHERE workflow = $1 AND status IN ($2, $3) ORDER BY seq`, c.ID, int16(rollback.StatusPending), int16(rollback.StatusFailed))
	if err != nil {
		return rollback.Claimed{}, false, fmt.Errorf("pgjournal: reading the entries of claimed workflow %q: %w", c.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e  rollback.Entry
			st int16
		)
		if err := rows.Scan(&e.Seq, &e.Name, &e.Args, &e.Confirmed, &st); err != nil {
			return rollback.Claimed{}, false, err
		}
		e.Status = rollback.Status(st)
		c.Entries = append(c.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return rollback.Claimed{}, false, fmt.Errorf("pgjournal: reading the entries of claimed workflow %q: %w", c.ID, err)
	}
	return c, true, nil
}
