package rollback

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Journal keeps durable compensations, so that the compensations of a
// workflow whose process died are run by a recoverer in another process
// (see [Recover]). Implementations: the in-memory reference journal of
// package rollback/journaltest (tests), rollback/sqlitejournal (embedded,
// one file) and rollback/pgjournal (PostgreSQL, many processes). The
// contract suite rollback/journaltest checks an implementation.
//
// A workflow is one top-level rollback scope ([Do], [Begin], a [Saga])
// run with a Config that names the Journal. It has an owner (the process
// running it, Config.Owner) and a lease: it belongs to its owner until
// the lease expires. Every write of the owner renews the lease; [KeepAlive]
// renews all of an owner's workflows in one call per period, for steps
// longer than the lease. A rollback in process renews the lease itself:
// before each journaled compensation it runs (a fenced write that also
// checks the workflow is still the owner's) and every Lease/3 while one
// runs. A workflow whose lease expired before it was
// finished is abandoned: [Journal.Claim] hands it to exactly one
// recoverer, which becomes its owner under a new lease.
//
// Every write names the owner and fails with an error wrapping
// [ErrLeaseLost] when the workflow is not (or no longer) that owner's: a
// recoverer has claimed it, or it was finished. That fences a stalled
// owner off from a workflow a recoverer has taken over.
//
// Methods must be safe for concurrent use, by many goroutines and, for a
// shared journal, by many processes. A lease is a duration from the
// journal's clock (the process's time.Now for an embedded journal, the
// server's for a shared one); durations saturate (math.MaxInt64 is as
// long as the journal can hold).
type Journal interface {
	// Begin records a new workflow: id (unique), its owner and its lease.
	// It fails with an error wrapping ErrInvalid when the id exists.
	Begin(ctx context.Context, id, owner string, lease time.Duration) error

	// Record writes a compensation of the workflow before the step it
	// undoes runs (Entry.Confirmed false: pending), or after it
	// (Confirmed true). Seq orders a workflow's entries; it is unique
	// within the workflow. Record renews the workflow's lease.
	Record(ctx context.Context, owner, id string, e Entry, lease time.Duration) error

	// Confirm marks entry seq of the workflow confirmed: its step
	// completed. It renews the workflow's lease.
	Confirm(ctx context.Context, owner, id string, seq int64, lease time.Duration) error

	// Settle records the outcome of entry seq: the compensation ran
	// (StatusDone), failed after its retries (StatusFailed), or is no
	// longer to run (StatusDiscarded: a saga's pivot succeeded). An
	// entry settled Done or Discarded is never handed out by Claim again;
	// one settled Failed is, so that a later recovery tries it again.
	// Settle renews the workflow's lease.
	Settle(ctx context.Context, owner, id string, seq int64, status Status, lease time.Duration) error

	// Finish removes the workflow: nothing of it is left to do.
	Finish(ctx context.Context, owner, id string) error

	// Release gives the workflow up: its lease expires after the given
	// delay (0: at once), after which Claim can hand it out. Until then
	// the workflow stays the owner's: its writes succeed, and a later
	// Release sets the delay anew. With the lease as the delay it is a
	// fenced renewal of one workflow, which an owner makes before each
	// compensation it runs in process, and every Lease/3 while one runs.
	Release(ctx context.Context, owner, id string, after time.Duration) error

	// Renew extends the lease of every workflow the owner holds to lease
	// from now, in one batch, and returns how many it extended.
	Renew(ctx context.Context, owner string, lease time.Duration) (int, error)

	// Claim hands one abandoned workflow (lease expired, not finished)
	// to the recoverer, which becomes its owner with the given lease; ok
	// is false when there is none. Of recoverers claiming concurrently,
	// exactly one gets each workflow. The Claimed entries are those not
	// settled Done or Discarded, in Seq order.
	Claim(ctx context.Context, recoverer string, lease time.Duration) (c Claimed, ok bool, err error)
}

// Entry is one durable compensation in a [Journal]: a registered handler
// name and its JSON-encoded arguments.
type Entry struct {
	// Seq orders the workflow's entries: compensations run newest
	// (highest Seq) first.
	Seq int64
	// Name is the handler's name in the [Registry].
	Name string
	// Args are the handler's arguments, JSON-encoded.
	Args []byte
	// Confirmed says that the step the entry undoes completed; false
	// (pending) means it may or may not have had its effect.
	Confirmed bool
	// Status is the entry's outcome so far: StatusPending until settled,
	// or StatusFailed when an earlier recovery could not complete it.
	Status Status
}

// Claimed is a workflow handed to a recoverer by [Journal.Claim].
type Claimed struct {
	// ID is the workflow's id.
	ID string
	// PreviousOwner is the owner whose lease expired.
	PreviousOwner string
	// Entries are the compensations left to run, in Seq order.
	Entries []Entry
}

// Status is the outcome of a journaled compensation.
type Status uint8

const (
	// StatusPending: not run yet.
	StatusPending Status = iota
	// StatusDone: the compensation ran (or had nothing to undo).
	StatusDone
	// StatusFailed: it failed after its retries; a later recovery tries
	// again.
	StatusFailed
	// StatusDiscarded: it is no longer to run (a saga's pivot step
	// succeeded after it was recorded, or the scope refused it).
	StatusDiscarded
)

// String returns pending, done, failed or discarded.
func (s Status) String() string {
	switch s {
	case StatusPending:
		return "pending"
	case StatusDone:
		return "done"
	case StatusFailed:
		return "failed"
	case StatusDiscarded:
		return "discarded"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// ErrLeaseLost is wrapped by a [Journal]'s writes when the workflow does
// not belong to the writer any more (a recoverer claimed it after the
// writer's lease expired) or does not exist (it was finished). A workflow
// that gets it from a journal write fails with it: its remaining
// compensations are the new owner's.
var ErrLeaseLost = errors.New("rollback: journal lease lost")

// ErrJournal is wrapped by the errors of a workflow whose journal write
// failed: OnRollback of a [Compensation] (the step must not run: nothing
// could undo it after a crash), [Pending.Confirm], and the end of a
// workflow whose outcome could not be recorded (its compensations may
// then run again at recovery; handlers are idempotent).
var ErrJournal = errors.New("rollback: journal")

// ErrNotRegistered is the failure recorded for a journaled compensation
// or guard whose name the [Registry] of the recoverer does not know.
var ErrNotRegistered = errors.New("rollback: compensation not registered")
