// Package journaltest checks that an implementation of rollback.Journal
// keeps the contract that rollback's workflows and Recover rely on:
// workflows begin once, entries are recorded, confirmed and settled by
// their owner only, leases expire and are renewed (singly by every owner
// write, in a batch by Renew), an abandoned workflow is claimed by exactly
// one of many concurrent recoverers with the entries left to run, and a
// stale owner is fenced off with rollback.ErrLeaseLost. It also holds
// [Memory], the in-memory reference journal, and [Crash], the crash tests
// (SIGKILLed child processes, recovery in the parent) that a journal's
// tests run on a real journal.
//
// A journal's tests call [Run]:
//
//	func TestJournalContract(t *testing.T) {
//		journaltest.Run(t, func(t *testing.T) rollback.Journal {
//			return openJournal(t) // an empty journal
//		}, journaltest.Options{})
//	}
package journaltest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/rollback"
)

// Options configures [Run].
type Options struct {
	// Unit is the suite's base lease: a case that waits for a lease to
	// expire lets about two units pass. It must be well above the
	// journal's clock precision and the duration of one journal call,
	// and the clock skew between this process and the journal's clock.
	// 0 means 200ms; negative is an error.
	Unit time.Duration

	// Advance makes d pass for the journal. nil means time.Sleep(d).
	Advance func(d time.Duration)
}

// Run runs the contract cases, each as a subtest on a fresh empty journal
// made by open.
func Run(t *testing.T, open func(t *testing.T) rollback.Journal, opts Options) {
	t.Helper()
	if opts.Unit < 0 {
		t.Fatalf("journaltest: Options.Unit: %v (must be 0 or more)", opts.Unit)
	}
	if opts.Unit == 0 {
		opts.Unit = 200 * time.Millisecond
	}
	if opts.Advance == nil {
		opts.Advance = time.Sleep
	}
	s := &suite{open: open, o: opts}
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, j rollback.Journal)
	}{
		{"BeginTwice", s.beginTwice},
		{"LiveNotClaimed", s.liveNotClaimed},
		{"ClaimEntries", s.claimEntries},
		{"SettledNotHandedOut", s.settledNotHandedOut},
		{"FencedAfterClaim", s.fencedAfterClaim},
		{"FinishRemoves", s.finishRemoves},
		{"WritesRenew", s.writesRenew},
		{"RenewBatch", s.renewBatch},
		{"Release", s.release},
		{"ReleaseKeepsOwner", s.releaseKeepsOwner},
		{"UnknownEntry", s.unknownEntry},
		{"ConcurrentClaims", s.concurrentClaims},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

type suite struct {
	open func(t *testing.T) rollback.Journal
	o    Options
}

// expired is a lease that has run out by the time the next call runs.
const expired = time.Nanosecond

const long = time.Hour

func ok(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func leaseLost(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, rollback.ErrLeaseLost) {
		t.Fatalf("%s: got %v, want an error wrapping rollback.ErrLeaseLost", what, err)
	}
}

// wait lets an expired lease be seen as such by the journal.
func (s *suite) wait() { s.o.Advance(s.o.Unit / 20) }

func claim(t *testing.T, j rollback.Journal, who string) (rollback.Claimed, bool) {
	t.Helper()
	c, found, err := j.Claim(context.Background(), who, long)
	ok(t, err, "Claim")
	return c, found
}

func (s *suite) beginTwice(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	ok(t, j.Begin(ctx, "w1", "a", long), "Begin")
	if err := j.Begin(ctx, "w1", "b", long); err == nil {
		t.Fatal("second Begin of the same id: got nil, want an error")
	}
	// The first owner still holds it.
	ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 1, Name: "n", Args: []byte(`1`)}, long), "Record by the first owner")
}

func (s *suite) liveNotClaimed(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	ok(t, j.Begin(ctx, "w1", "a", long), "Begin")
	if c, found := claim(t, j, "r"); found {
		t.Fatalf("Claim of a live workflow: got %+v", c)
	}
}

func (s *suite) claimEntries(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	ok(t, j.Begin(ctx, "w1", "a", long), "Begin")
	args := []byte(`{"id":"x\u00e9","n":[1,2]}`)
	ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 2, Name: "second", Args: []byte(`2`)}, long), "Record 2")
	ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 1, Name: "first", Args: args, Confirmed: true}, long), "Record 1")
	ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 3, Name: "third", Args: []byte(`"3"`)}, long), "Record 3")
	ok(t, j.Confirm(ctx, "a", "w1", 2, long), "Confirm 2")
	ok(t, j.Release(ctx, "a", "w1", 0), "Release")
	s.wait()
	c, found := claim(t, j, "r")
	if !found {
		t.Fatal("Claim of an abandoned workflow: none")
	}
	want := rollback.Claimed{ID: "w1", PreviousOwner: "a", Entries: []rollback.Entry{
		{Seq: 1, Name: "first", Args: args, Confirmed: true},
		{Seq: 2, Name: "second", Args: []byte(`2`), Confirmed: true},
		{Seq: 3, Name: "third", Args: []byte(`"3"`)},
	}}
	if got := fmt.Sprintf("%+v", c); got != fmt.Sprintf("%+v", want) {
		t.Fatalf("Claim:\n got %s\nwant %s", got, fmt.Sprintf("%+v", want))
	}
	if c, found := claim(t, j, "r2"); found {
		t.Fatalf("second Claim of a claimed workflow: got %+v", c)
	}
}

func (s *suite) settledNotHandedOut(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	ok(t, j.Begin(ctx, "w1", "a", long), "Begin")
	for i, st := range []rollback.Status{rollback.StatusDone, rollback.StatusDiscarded, rollback.StatusFailed, rollback.StatusPending} {
		seq := int64(i + 1)
		ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: seq, Name: st.String(), Args: []byte(`null`)}, long), "Record")
		if st != rollback.StatusPending {
			ok(t, j.Settle(ctx, "a", "w1", seq, st, long), "Settle "+st.String())
		}
	}
	ok(t, j.Release(ctx, "a", "w1", 0), "Release")
	s.wait()
	c, found := claim(t, j, "r")
	if !found || len(c.Entries) != 2 || c.Entries[0].Name != "failed" || c.Entries[0].Status != rollback.StatusFailed ||
		c.Entries[1].Name != "pending" || c.Entries[1].Status != rollback.StatusPending {
		t.Fatalf("Claim: got %+v (found %v), want the failed and the pending entries only", c, found)
	}
	// The recoverer settles one and gives up; the next sees the rest.
	ok(t, j.Settle(ctx, "r", "w1", 4, rollback.StatusDone, long), "Settle by the recoverer")
	ok(t, j.Release(ctx, "r", "w1", 0), "Release by the recoverer")
	s.wait()
	c, found = claim(t, j, "r2")
	if !found || len(c.Entries) != 1 || c.Entries[0].Seq != 3 || c.Entries[0].Name != "failed" || c.PreviousOwner != "r" {
		t.Fatalf("second Claim: got %+v (found %v), want entry 3 only, previous owner r", c, found)
	}
}

func (s *suite) fencedAfterClaim(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	ok(t, j.Begin(ctx, "w1", "a", expired), "Begin")
	ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 1, Name: "n", Args: []byte(`1`)}, expired), "Record")
	s.wait()
	if _, found := claim(t, j, "r"); !found {
		t.Fatal("Claim after the lease expired: none")
	}
	leaseLost(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 2, Name: "n", Args: []byte(`1`)}, long), "Record by the old owner")
	leaseLost(t, j.Confirm(ctx, "a", "w1", 1, long), "Confirm by the old owner")
	leaseLost(t, j.Settle(ctx, "a", "w1", 1, rollback.StatusDone, long), "Settle by the old owner")
	leaseLost(t, j.Release(ctx, "a", "w1", 0), "Release by the old owner")
	leaseLost(t, j.Finish(ctx, "a", "w1"), "Finish by the old owner")
	n, err := j.Renew(ctx, "a", long)
	ok(t, err, "Renew by the old owner")
	if n != 0 {
		t.Fatalf("Renew by the old owner: renewed %d, want 0", n)
	}
	// The recoverer holds it: its entry is still pending.
	ok(t, j.Settle(ctx, "r", "w1", 1, rollback.StatusDone, long), "Settle by the recoverer")
	ok(t, j.Finish(ctx, "r", "w1"), "Finish by the recoverer")
}

func (s *suite) finishRemoves(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	ok(t, j.Begin(ctx, "w1", "a", expired), "Begin")
	ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 1, Name: "n", Args: []byte(`1`)}, expired), "Record")
	ok(t, j.Finish(ctx, "a", "w1"), "Finish")
	s.wait()
	if c, found := claim(t, j, "r"); found {
		t.Fatalf("Claim after Finish: got %+v", c)
	}
	leaseLost(t, j.Confirm(ctx, "a", "w1", 1, long), "Confirm after Finish")
	leaseLost(t, j.Finish(ctx, "a", "w1"), "second Finish")
	// The id can be used again.
	ok(t, j.Begin(ctx, "w1", "b", long), "Begin after Finish")
}

func (s *suite) writesRenew(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	u := s.o.Unit
	ok(t, j.Begin(ctx, "w1", "a", u), "Begin")
	ok(t, j.Begin(ctx, "w2", "a", u), "Begin")
	ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 1, Name: "n", Args: []byte(`1`)}, long), "Record")
	ok(t, j.Record(ctx, "a", "w2", rollback.Entry{Seq: 1, Name: "n", Args: []byte(`1`)}, u), "Record")
	s.o.Advance(2 * u)
	c, found := claim(t, j, "r")
	if !found || c.ID != "w2" {
		t.Fatalf("Claim: got %+v (found %v), want w2 (w1 was renewed by Record)", c, found)
	}
	if c, found := claim(t, j, "r"); found {
		t.Fatalf("second Claim: got %+v, want none", c)
	}
}

func (s *suite) renewBatch(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	u := s.o.Unit
	for _, w := range []string{"a1", "a2", "a3"} {
		ok(t, j.Begin(ctx, w, "a", u), "Begin")
	}
	ok(t, j.Begin(ctx, "b1", "b", u), "Begin")
	n, err := j.Renew(ctx, "a", long)
	ok(t, err, "Renew")
	if n != 3 {
		t.Fatalf("Renew: renewed %d, want 3", n)
	}
	s.o.Advance(2 * u)
	c, found := claim(t, j, "r")
	if !found || c.ID != "b1" {
		t.Fatalf("Claim: got %+v (found %v), want b1, the only workflow not renewed", c, found)
	}
	if c, found := claim(t, j, "r"); found {
		t.Fatalf("second Claim: got %+v, want none", c)
	}
	// An expired lease is not renewed: the workflow is abandoned.
	ok(t, j.Begin(ctx, "a4", "a", expired), "Begin")
	s.wait()
	n, err = j.Renew(ctx, "a", long)
	ok(t, err, "Renew")
	if n != 3 {
		t.Fatalf("Renew with one expired lease: renewed %d, want 3", n)
	}
}

func (s *suite) release(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	ok(t, j.Begin(ctx, "w1", "a", long), "Begin")
	ok(t, j.Release(ctx, "a", "w1", long), "Release after an hour")
	if c, found := claim(t, j, "r"); found {
		t.Fatalf("Claim before the release delay: got %+v", c)
	}
	ok(t, j.Release(ctx, "a", "w1", 0), "Release now")
	s.wait()
	if _, found := claim(t, j, "r"); !found {
		t.Fatal("Claim after Release(0): none")
	}
}

// releaseKeepsOwner: Release with a delay is a fenced renewal of one
// workflow (the rollback package makes one before each compensation it
// runs in process): the owner keeps it, even after its lease expired as
// long as no recoverer claimed it.
func (s *suite) releaseKeepsOwner(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	u := s.o.Unit
	ok(t, j.Begin(ctx, "w1", "a", u), "Begin")
	ok(t, j.Release(ctx, "a", "w1", long), "Release for an hour")
	s.o.Advance(2 * u)
	if c, found := claim(t, j, "r"); found {
		t.Fatalf("Claim after a Release for an hour: got %+v", c)
	}
	ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 1, Name: "n", Args: []byte(`1`)}, u), "Record after Release: the owner keeps the workflow")
	s.o.Advance(2 * u) // expired, not claimed
	ok(t, j.Release(ctx, "a", "w1", long), "Release after the lease expired, unclaimed")
	if c, found := claim(t, j, "r"); found {
		t.Fatalf("Claim after the renewing Release: got %+v", c)
	}
	ok(t, j.Release(ctx, "a", "w1", expired), "Release now")
	s.wait()
	if _, found := claim(t, j, "r"); !found {
		t.Fatal("Claim after Release(expired): none")
	}
	leaseLost(t, j.Release(ctx, "a", "w1", long), "Release by the old owner after the claim")
}

func (s *suite) unknownEntry(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	ok(t, j.Begin(ctx, "w1", "a", long), "Begin")
	if err := j.Confirm(ctx, "a", "w1", 9, long); err == nil {
		t.Fatal("Confirm of an unknown entry: got nil, want an error")
	}
	if err := j.Settle(ctx, "a", "w1", 9, rollback.StatusDone, long); err == nil {
		t.Fatal("Settle of an unknown entry: got nil, want an error")
	}
	ok(t, j.Record(ctx, "a", "w1", rollback.Entry{Seq: 1, Name: "n", Args: []byte(`1`)}, long), "Record")
	if err := j.Record(ctx, "a", "w1", rollback.Entry{Seq: 1, Name: "m", Args: []byte(`2`)}, long); err == nil {
		t.Fatal("Record of an existing Seq: got nil, want an error")
	}
	leaseLost(t, j.Record(ctx, "a", "nope", rollback.Entry{Seq: 1, Name: "n", Args: []byte(`1`)}, long), "Record in an unknown workflow")
}

func (s *suite) concurrentClaims(t *testing.T, j rollback.Journal) {
	ctx := context.Background()
	const workflows, recoverers = 20, 6
	for i := range workflows {
		id := fmt.Sprintf("w%02d", i)
		ok(t, j.Begin(ctx, id, "a", expired), "Begin")
		ok(t, j.Record(ctx, "a", id, rollback.Entry{Seq: 1, Name: "n", Args: []byte(`1`)}, expired), "Record")
	}
	s.wait()
	var (
		mu     sync.Mutex
		claims = map[string][]string{}
		wg     sync.WaitGroup
		errs   = make(chan error, recoverers)
	)
	for r := range recoverers {
		who := fmt.Sprintf("r%d", r)
		wg.Go(func() {
			for {
				c, found, err := j.Claim(ctx, who, long)
				if err != nil {
					errs <- err
					return
				}
				if !found {
					return
				}
				mu.Lock()
				claims[c.ID] = append(claims[c.ID], who)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Claim: %v", err)
	}
	if len(claims) != workflows {
		t.Fatalf("claimed %d workflows, want %d: %v", len(claims), workflows, claims)
	}
	for id, who := range claims {
		if len(who) != 1 {
			t.Fatalf("workflow %s claimed by %v, want exactly one recoverer", id, who)
		}
		// The winner holds it.
		ok(t, j.Finish(ctx, who[0], id), "Finish by the winner")
	}
}
