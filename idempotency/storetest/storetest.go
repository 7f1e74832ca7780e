// Package storetest checks that an implementation of idempotency.Store
// keeps the contract the Manager relies on: atomic claims, owner-only
// extension, completion and release, lease and TTL expiry, not-found, and
// results that survive the store whatever form it keeps them in; and, for
// a store that also implements idempotency.BatchExtender, that ExtendMany
// extends exactly the claims their owners hold, each with its own outcome,
// in batches of any size (the ExtendMany cases skip other stores).
//
// A store's own tests call [Run] (for stores whose clock is this process's
// time.Now, such as idempotency.MemoryStore) or [RunWith] (for stores with
// a clock of their own, such as a Redis server):
//
//	func TestStoreContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) idempotency.Store {
//			s, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
)

// Options configures [RunWith].
type Options struct {
	// Unit is the suite's base duration: leases and TTLs are small
	// multiples of it, and a case that waits lets a few units pass. It
	// must be well above the store's expiry precision and the duration
	// of a store call. 0 means 1s; it must not be negative or above
	// MaxUnit.
	Unit time.Duration

	// Advance makes d pass for the store: sleeps, or moves a fake
	// server's clock forward. nil means time.Sleep(d).
	Advance func(d time.Duration)
}

// MaxUnit is the largest Options.Unit: the suite's leases and TTLs, small
// multiples of the unit, then stay far from overflowing.
const MaxUnit = time.Hour

// Forever is math.MaxInt64 as a duration, the longest lease or TTL: a store
// must keep a record given it as long as it can (saturate), never wrap it
// around into a record born expired. The suite's case ForeverDurations
// checks it.
const Forever = time.Duration(math.MaxInt64)

// Run runs the contract suite, one subtest per case, each with a fresh
// store from newStore. Each case runs in its own testing/synctest bubble
// (newStore is called inside it), so that its waits take no real time;
// the store must therefore read time with time.Now and start no goroutine
// that outlives the case.
func Run(t *testing.T, newStore func(t *testing.T) idempotency.Store) {
	t.Helper()
	if newStore == nil {
		t.Fatal("storetest: Run: nil newStore")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &suite{store: mustStore(t, newStore), unit: time.Second, advance: time.Sleep, localClock: true}
				c.run(t, s)
			})
		})
	}
}

// RunWith runs the contract suite on real time (or the time opts.Advance
// moves), one subtest per case, each with a fresh store from newStore.
// Every case uses keys of its own, so stores may share a backend.
func RunWith(t *testing.T, newStore func(t *testing.T) idempotency.Store, opts Options) {
	t.Helper()
	if newStore == nil {
		t.Fatal("storetest: RunWith: nil newStore")
	}
	if opts.Unit < 0 || opts.Unit > MaxUnit {
		t.Fatalf("storetest: Options.Unit must be between 0 and %v, got %v", MaxUnit, opts.Unit)
	}
	s := suite{unit: opts.Unit, advance: opts.Advance}
	if s.unit == 0 {
		s.unit = time.Second
	}
	if s.advance == nil {
		s.advance = time.Sleep
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s
			s.store = mustStore(t, newStore)
			c.run(t, &s)
		})
	}
}

// mustStore returns a store from newStore, failing t if it is nil.
func mustStore(t *testing.T, newStore func(t *testing.T) idempotency.Store) idempotency.Store {
	t.Helper()
	st := newStore(t)
	if st == nil {
		t.Fatal("storetest: newStore returned a nil Store")
	}
	return st
}

type suite struct {
	store      idempotency.Store
	unit       time.Duration
	advance    func(time.Duration)
	localClock bool // the store's clock is time.Now
}

type testCase struct {
	name string
	run  func(t *testing.T, s *suite)
}

var cases = []testCase{
	{"GetMissing", testGetMissing},
	{"ClaimCreatesInProgress", testClaimCreatesInProgress},
	{"ClaimOfHeldKeyReturnsHolder", testClaimOfHeldKey},
	{"ClaimIsAtomic", testClaimIsAtomic},
	{"CompleteKeepsValues", testCompleteKeepsValues},
	{"CompleteKeepsError", testCompleteKeepsError},
	{"ErrorWithoutMessage", testErrorWithoutMessage},
	{"ValueAsAnotherTypeIsErrDecode", testValueAsAnotherType},
	{"NilValueAsAnotherTypeIsErrDecode", testNilValueAsAnotherType},
	{"CompleteOnlyByOwner", testCompleteOnlyByOwner},
	{"ClaimOfCompletedKeyReturnsResult", testClaimOfCompletedKey},
	{"ReleaseOnlyByOwner", testReleaseOnlyByOwner},
	{"ExtendOnlyByOwner", testExtendOnlyByOwner},
	{"ExtendKeepsClaim", testExtendKeepsClaim},
	{"LeaseExpiry", testLeaseExpiry},
	{"TTLExpiry", testTTLExpiry},
	{"ForeverDurations", testForeverDurations},
	{"ForgetDeletesCompleted", testForgetDeletesCompleted},
	{"ForgetLeavesClaimsAlone", testForgetLeavesClaimsAlone},
	{"ForgetStartsANewGeneration", testForgetStartsANewGeneration},
	{"GenerationSurvivesLapsesAndReleases", testGenerationSurvivesLapses},
	{"KeysAreDistinct", testKeysAreDistinct},
	{"ConcurrentKeys", testConcurrentKeys},
	// Stores that implement idempotency.BatchExtender; skipped by others.
	{"ExtendManyOnlyByOwner", testExtendManyOnlyByOwner},
	{"ExtendManyKeepsClaims", testExtendManyKeepsClaims},
	{"ExtendManyLargeBatch", testExtendManyLargeBatch},
}

// sample is a struct result, with the shapes a codec must keep.
type sample struct {
	Name  string            `json:"name"`
	Count int               `json:"count"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Next  *sample           `json:"next"`
}

// ctx is the context of store calls: a case's own.
func ctx(t *testing.T) context.Context { return t.Context() }

func (s *suite) claim(t *testing.T, key, owner, fp string, lease time.Duration) (idempotency.Record, bool) {
	t.Helper()
	rec, claimed, err := s.store.Claim(ctx(t), key, owner, fp, lease)
	if err != nil {
		t.Fatalf("Claim(%q, %q): unexpected error: %v", key, owner, err)
	}
	return rec, claimed
}

func (s *suite) mustClaim(t *testing.T, key, owner, fp string, lease time.Duration) {
	t.Helper()
	if rec, claimed := s.claim(t, key, owner, fp, lease); !claimed {
		t.Fatalf("Claim(%q, %q) = not claimed, held by %q (%v); want claimed", key, owner, rec.Owner, rec.State)
	}
}

func (s *suite) get(t *testing.T, key string) (idempotency.Record, bool) {
	t.Helper()
	rec, found, err := s.store.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): unexpected error: %v", key, err)
	}
	return rec, found
}

func (s *suite) wantMissing(t *testing.T, key string) {
	t.Helper()
	if rec, found := s.get(t, key); found {
		t.Fatalf("Get(%q) found a %v record of %q; want none", key, rec.State, rec.Owner)
	}
}

func (s *suite) wantHeld(t *testing.T, key, owner string) {
	t.Helper()
	rec, found := s.get(t, key)
	if !found || rec.State != idempotency.InProgress || rec.Owner != owner {
		t.Fatalf("Get(%q) = %v record of %q (found %v); want in progress, owned by %q", key, rec.State, rec.Owner, found, owner)
	}
}

func (s *suite) complete(t *testing.T, key, owner string, out idempotency.Outcome, ttl time.Duration) {
	t.Helper()
	if err := s.store.Complete(ctx(t), key, owner, out, ttl); err != nil {
		t.Fatalf("Complete(%q, %q): unexpected error: %v", key, owner, err)
	}
}

func wantLeaseLost(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("%s: got error %v; want one wrapping idempotency.ErrLeaseLost", op, err)
	}
}

func testGetMissing(t *testing.T, s *suite) {
	s.wantMissing(t, "missing")
}

func testClaimCreatesInProgress(t *testing.T, s *suite) {
	start := time.Now()
	rec, claimed := s.claim(t, "k", "owner-a", "fp-a", 3*s.unit)
	if !claimed {
		t.Fatalf("Claim of a new key: not claimed (held by %q)", rec.Owner)
	}
	if rec.State != idempotency.InProgress || rec.Owner != "owner-a" || rec.Fingerprint != "fp-a" {
		t.Fatalf("Claim returned %+v; want in progress, owner-a, fp-a", rec)
	}
	if s.localClock && !rec.Expires.IsZero() && (rec.Expires.Before(start) || rec.Expires.After(start.Add(4*s.unit))) {
		t.Errorf("Claim: Expires %v is not %v after %v", rec.Expires, 3*s.unit, start)
	}
	got, found := s.get(t, "k")
	if !found || got.State != idempotency.InProgress || got.Owner != "owner-a" || got.Fingerprint != "fp-a" {
		t.Fatalf("Get after Claim = %+v (found %v); want in progress, owner-a, fp-a", got, found)
	}
	// Whatever the store's clock, a reported expiry follows the lease.
	if err := s.store.Extend(ctx(t), "k", "owner-a", 6*s.unit); err != nil {
		t.Fatalf("Extend by the owner: %v", err)
	}
	extended, _ := s.get(t, "k")
	if !rec.Expires.IsZero() && !extended.Expires.IsZero() {
		if d := extended.Expires.Sub(rec.Expires); d < 2*s.unit || d > 4*s.unit {
			t.Errorf("extending a %v lease to %v moved Expires by %v; want about %v", 3*s.unit, 6*s.unit, d, 3*s.unit)
		}
	}
}

func testClaimOfHeldKey(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "fp-a", 3*s.unit)
	rec, claimed := s.claim(t, "k", "owner-b", "fp-b", 3*s.unit)
	if claimed {
		t.Fatal("a second owner claimed a held key")
	}
	if rec.State != idempotency.InProgress || rec.Owner != "owner-a" || rec.Fingerprint != "fp-a" {
		t.Fatalf("Claim of a held key returned %+v; want the holder's record (owner-a, fp-a)", rec)
	}
	if _, claimed := s.claim(t, "k", "owner-a", "fp-a", 3*s.unit); claimed {
		t.Fatal("the holder claimed its own key again: claims must not be re-entrant")
	}
	s.wantHeld(t, "k", "owner-a")
}

func testClaimIsAtomic(t *testing.T, s *suite) {
	const keys, contenders = 8, 16
	for k := range keys {
		key := fmt.Sprintf("atomic-%d", k)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
			holders = map[string]int{}
		)
		for c := range contenders {
			owner := fmt.Sprintf("owner-%d", c)
			wg.Go(func() {
				rec, claimed, err := s.store.Claim(ctx(t), key, owner, "", 5*s.unit)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("Claim(%q, %q): %v", key, owner, err)
				case claimed:
					winners = append(winners, owner)
				default:
					holders[rec.Owner]++
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("key %q: %d of %d concurrent claims succeeded (%v); want exactly 1", key, len(winners), contenders, winners)
		}
		if holders[winners[0]] != contenders-1 {
			t.Fatalf("key %q: losers saw holders %v; want all %d to see the winner %q", key, holders, contenders-1, winners[0])
		}
	}
}

func testCompleteKeepsValues(t *testing.T, s *suite) {
	var nilSample *sample
	full := sample{Name: "n", Count: 3, Tags: []string{"a", "b"}, Attrs: map[string]string{"k": "v"}, Next: &sample{Name: "next"}}
	roundTrip(t, s, "string", "hello")
	roundTrip(t, s, "empty-string", "")
	roundTrip(t, s, "int", 42)
	roundTrip(t, s, "zero-int", 0)
	roundTrip(t, s, "negative-int64", int64(-7))
	roundTrip(t, s, "float", 2.5)
	roundTrip(t, s, "false", false)
	roundTrip(t, s, "true", true)
	roundTrip(t, s, "struct", full)
	roundTrip(t, s, "zero-struct", sample{})
	roundTrip(t, s, "struct-pointer", &full)
	roundTrip(t, s, "nil-pointer", nilSample)
	roundTrip(t, s, "slice", []string{"x", "y"})
	roundTrip(t, s, "map", map[string]int{"a": 1, "b": 2})
}

// roundTrip completes a claim with v and checks that the record hands v
// back, as a T, through idempotency.ValueOf.
func roundTrip[T any](t *testing.T, s *suite, key string, v T) {
	t.Helper()
	s.mustClaim(t, key, "owner", "fp-"+key, 3*s.unit)
	s.complete(t, key, "owner", idempotency.Outcome{Value: v}, 10*s.unit)
	rec, found := s.get(t, key)
	if !found || rec.State != idempotency.Completed {
		t.Fatalf("%s: Get after Complete = %v (found %v); want completed", key, rec.State, found)
	}
	if rec.Fingerprint != "fp-"+key {
		t.Errorf("%s: completed record has fingerprint %q; want the claim's %q", key, rec.Fingerprint, "fp-"+key)
	}
	if rec.Err != nil {
		t.Errorf("%s: completed record has error %v; want none", key, rec.Err)
	}
	got, err := idempotency.ValueOf[T](rec)
	if err != nil {
		t.Fatalf("%s: ValueOf: %v", key, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("%s: stored %#v, got back %#v", key, v, got)
	}
}

func testCompleteKeepsError(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner", "", 3*s.unit)
	s.complete(t, "k", "owner", idempotency.Outcome{Err: errors.New("card declined")}, 10*s.unit)
	rec, found := s.get(t, "k")
	if !found || rec.State != idempotency.Completed {
		t.Fatalf("Get after Complete with an error = %v (found %v); want completed", rec.State, found)
	}
	if rec.Err == nil || rec.Err.Error() != "card declined" {
		t.Fatalf("completed record has error %v; want one with the message %q", rec.Err, "card declined")
	}
}

func testCompleteOnlyByOwner(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "", 3*s.unit)
	wantLeaseLost(t, "Complete by another owner", s.store.Complete(ctx(t), "k", "owner-b", idempotency.Outcome{Value: "b"}, 10*s.unit))
	s.wantHeld(t, "k", "owner-a")

	wantLeaseLost(t, "Complete of a missing key", s.store.Complete(ctx(t), "missing", "owner-a", idempotency.Outcome{Value: "x"}, 10*s.unit))
	s.wantMissing(t, "missing")

	s.complete(t, "k", "owner-a", idempotency.Outcome{Value: "first"}, 10*s.unit)
	wantLeaseLost(t, "Complete of a completed key", s.store.Complete(ctx(t), "k", "owner-a", idempotency.Outcome{Value: "second"}, 10*s.unit))
	rec, _ := s.get(t, "k")
	if v, err := idempotency.ValueOf[string](rec); err != nil || v != "first" {
		t.Fatalf("after a second Complete, the record holds %q (%v); want the first value", v, err)
	}
}

func testClaimOfCompletedKey(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "fp", 3*s.unit)
	s.complete(t, "k", "owner-a", idempotency.Outcome{Value: 7}, 10*s.unit)
	rec, claimed := s.claim(t, "k", "owner-b", "fp", 3*s.unit)
	if claimed {
		t.Fatal("claimed a completed key within its TTL")
	}
	if rec.State != idempotency.Completed || rec.Fingerprint != "fp" {
		t.Fatalf("Claim of a completed key returned %v, fingerprint %q; want completed, fp", rec.State, rec.Fingerprint)
	}
	if v, err := idempotency.ValueOf[int](rec); err != nil || v != 7 {
		t.Fatalf("Claim of a completed key returned value %v (%v); want 7", v, err)
	}
}

func testReleaseOnlyByOwner(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "", 3*s.unit)
	wantLeaseLost(t, "Release by another owner", s.store.Release(ctx(t), "k", "owner-b"))
	s.wantHeld(t, "k", "owner-a")
	wantLeaseLost(t, "Release of a missing key", s.store.Release(ctx(t), "missing", "owner-a"))

	if err := s.store.Release(ctx(t), "k", "owner-a"); err != nil {
		t.Fatalf("Release by the owner: %v", err)
	}
	s.wantMissing(t, "k")
	s.mustClaim(t, "k", "owner-b", "", 3*s.unit)
	wantLeaseLost(t, "Release by a former owner", s.store.Release(ctx(t), "k", "owner-a"))
	s.wantHeld(t, "k", "owner-b")

	s.complete(t, "k", "owner-b", idempotency.Outcome{Value: 1}, 10*s.unit)
	wantLeaseLost(t, "Release of a completed key", s.store.Release(ctx(t), "k", "owner-b"))
	if rec, found := s.get(t, "k"); !found || rec.State != idempotency.Completed {
		t.Fatalf("Release removed a completed record (%v, found %v)", rec.State, found)
	}
}

func testExtendOnlyByOwner(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "", 3*s.unit)
	wantLeaseLost(t, "Extend by another owner", s.store.Extend(ctx(t), "k", "owner-b", 3*s.unit))
	wantLeaseLost(t, "Extend of a missing key", s.store.Extend(ctx(t), "missing", "owner-a", 3*s.unit))
	s.wantMissing(t, "missing")
	s.complete(t, "k", "owner-a", idempotency.Outcome{Value: 1}, 10*s.unit)
	wantLeaseLost(t, "Extend of a completed key", s.store.Extend(ctx(t), "k", "owner-a", 3*s.unit))
	if rec, _ := s.get(t, "k"); rec.State != idempotency.Completed {
		t.Fatalf("Extend changed a completed record to %v", rec.State)
	}
}

func testExtendKeepsClaim(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "", 2*s.unit)
	s.advance(s.unit)
	if err := s.store.Extend(ctx(t), "k", "owner-a", 4*s.unit); err != nil {
		t.Fatalf("Extend by the owner: %v", err)
	}
	s.advance(2 * s.unit) // past the first lease, within the extension
	s.wantHeld(t, "k", "owner-a")
	if rec, claimed := s.claim(t, "k", "owner-b", "", 2*s.unit); claimed {
		t.Fatal("claimed a key whose lease was extended")
	} else if rec.Owner != "owner-a" {
		t.Fatalf("held by %q; want owner-a", rec.Owner)
	}
	s.advance(3 * s.unit) // past the extension
	s.wantMissing(t, "k")
	s.mustClaim(t, "k", "owner-b", "", 2*s.unit)
}

func testLeaseExpiry(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "", 2*s.unit)
	s.advance(3 * s.unit)
	s.wantMissing(t, "k")
	wantLeaseLost(t, "Extend after the lease ran out", s.store.Extend(ctx(t), "k", "owner-a", 2*s.unit))
	s.mustClaim(t, "k", "owner-b", "", 5*s.unit)
	wantLeaseLost(t, "Complete after the lease ran out", s.store.Complete(ctx(t), "k", "owner-a", idempotency.Outcome{Value: "late"}, 10*s.unit))
	wantLeaseLost(t, "Release after the lease ran out", s.store.Release(ctx(t), "k", "owner-a"))
	s.wantHeld(t, "k", "owner-b")
}

func testTTLExpiry(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "", 2*s.unit)
	s.complete(t, "k", "owner-a", idempotency.Outcome{Value: "v"}, 4*s.unit)
	s.advance(2 * s.unit)
	if rec, found := s.get(t, "k"); !found || rec.State != idempotency.Completed {
		t.Fatalf("completed record gone before its TTL (%v, found %v)", rec.State, found)
	}
	if _, claimed := s.claim(t, "k", "owner-b", "", 2*s.unit); claimed {
		t.Fatal("claimed a completed key within its TTL")
	}
	s.advance(3 * s.unit) // past the TTL
	s.wantMissing(t, "k")
	s.mustClaim(t, "k", "owner-b", "", 2*s.unit)
}

func testKeysAreDistinct(t *testing.T, s *suite) {
	long := string(make([]byte, 300))
	keys := []string{"a", "a ", "A", "a:b", "a/b", "ключ", "k\x00v", long, "64e9f3b1c2a7d8e0f4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7"}
	for i, key := range keys {
		s.mustClaim(t, key, fmt.Sprint("owner-", i), "", 5*s.unit)
	}
	for i, key := range keys {
		s.wantHeld(t, key, fmt.Sprint("owner-", i))
	}
}

func testConcurrentKeys(t *testing.T, s *suite) {
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key, owner := fmt.Sprint("concurrent-", i), fmt.Sprint("owner-", i)
			if _, claimed, err := s.store.Claim(ctx(t), key, owner, "", 5*s.unit); err != nil || !claimed {
				t.Errorf("Claim(%q): claimed %v, error %v", key, claimed, err)
				return
			}
			if i%3 == 0 {
				if err := s.store.Release(ctx(t), key, owner); err != nil {
					t.Errorf("Release(%q): %v", key, err)
				}
				return
			}
			if err := s.store.Complete(ctx(t), key, owner, idempotency.Outcome{Value: i}, 10*s.unit); err != nil {
				t.Errorf("Complete(%q): %v", key, err)
				return
			}
			rec, found, err := s.store.Get(ctx(t), key)
			if err != nil || !found {
				t.Errorf("Get(%q): found %v, error %v", key, found, err)
				return
			}
			if v, err := idempotency.ValueOf[int](rec); err != nil || v != i {
				t.Errorf("Get(%q) = %v (%v); want %d", key, v, err, i)
			}
		})
	}
	wg.Wait()
}

func (s *suite) forget(t *testing.T, key string) bool {
	t.Helper()
	forgotten, err := s.store.Forget(ctx(t), key)
	if err != nil {
		t.Fatalf("Forget(%q): unexpected error: %v", key, err)
	}
	return forgotten
}

func testForgetDeletesCompleted(t *testing.T, s *suite) {
	if s.forget(t, "k") {
		t.Fatalf("Forget of a missing key reported a deletion")
	}
	s.mustClaim(t, "k", "owner-a", "", 3*s.unit)
	s.complete(t, "k", "owner-a", idempotency.Outcome{Value: "v"}, 10*s.unit)
	if !s.forget(t, "k") {
		t.Fatalf("Forget of a completed key: not forgotten")
	}
	s.wantMissing(t, "k")
	if s.forget(t, "k") {
		t.Fatalf("second Forget reported a deletion")
	}
	// The operation can run again.
	s.mustClaim(t, "k", "owner-b", "", 3*s.unit)
	s.wantHeld(t, "k", "owner-b")
}

// wantGeneration claims key for owner and checks the claim's generation.
func (s *suite) wantGeneration(t *testing.T, key, owner string, lease time.Duration, want uint64, when string) {
	t.Helper()
	rec, claimed := s.claim(t, key, owner, "", lease)
	if !claimed {
		t.Fatalf("%s: Claim of %q not claimed (held by %q)", when, key, rec.Owner)
	}
	if rec.Generation != want {
		t.Fatalf("%s: Claim of %q has Generation %d; want %d", when, key, rec.Generation, want)
	}
	if got, found := s.get(t, key); !found || got.Generation != want {
		t.Fatalf("%s: Get of the claim has Generation %d (found %v); want %d", when, got.Generation, found, want)
	}
}

// testForgetStartsANewGeneration: each Forget of a completed record
// advances the key's generation by one; a completed record keeps its
// claim's generation; a Forget that deletes nothing changes nothing.
func testForgetStartsANewGeneration(t *testing.T, s *suite) {
	s.wantGeneration(t, "k", "owner-a", 3*s.unit, 0, "a new key")
	s.complete(t, "k", "owner-a", idempotency.Outcome{Value: "v"}, 10*s.unit)
	if rec, _ := s.get(t, "k"); rec.Generation != 0 {
		t.Fatalf("completed record has Generation %d; want 0", rec.Generation)
	}
	if rec, claimed := s.claim(t, "k", "owner-x", "", 3*s.unit); claimed || rec.Generation != 0 {
		t.Fatalf("Claim of the completed key: claimed %v, Generation %d; want the record, generation 0", claimed, rec.Generation)
	}
	if !s.forget(t, "k") {
		t.Fatal("Forget of a completed key: not forgotten")
	}
	s.wantMissing(t, "k")
	if s.forget(t, "k") {
		t.Fatal("second Forget reported a deletion")
	}
	s.wantGeneration(t, "k", "owner-b", 3*s.unit, 1, "after one Forget")
	if s.forget(t, "k") {
		t.Fatal("Forget of a claim reported a deletion")
	}
	s.complete(t, "k", "owner-b", idempotency.Outcome{Value: "v2"}, 10*s.unit)
	if rec, _ := s.get(t, "k"); rec.Generation != 1 {
		t.Fatalf("completed record of generation 1 has Generation %d", rec.Generation)
	}
	if !s.forget(t, "k") {
		t.Fatal("second generation's Forget: not forgotten")
	}
	s.wantGeneration(t, "k", "owner-c", 3*s.unit, 2, "after two Forgets")
	// Other keys are untouched.
	s.wantGeneration(t, "other", "owner-a", 3*s.unit, 0, "another key")
}

// testGenerationSurvivesLapses: a forgotten key's generation is kept by a
// claim that is released or whose lease runs out (a crash), so that the
// rerun sends the same remote key; and it lasts at least as long as the
// forgotten record would have.
func testGenerationSurvivesLapses(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "", 3*s.unit)
	s.complete(t, "k", "owner-a", idempotency.Outcome{Value: "v"}, 20*s.unit)
	if !s.forget(t, "k") {
		t.Fatal("Forget of a completed key: not forgotten")
	}
	s.wantGeneration(t, "k", "owner-b", 2*s.unit, 1, "after Forget")
	if err := s.store.Release(ctx(t), "k", "owner-b"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	s.wantGeneration(t, "k", "owner-c", 2*s.unit, 1, "after a Release")
	s.advance(3 * s.unit) // owner-c's lease runs out: it crashed
	s.wantGeneration(t, "k", "owner-d", 2*s.unit, 1, "after a lapsed lease")
	s.advance(3 * s.unit)
	s.wantGeneration(t, "k", "owner-e", 2*s.unit, 1, "after another lapsed lease")
}

func testForgetLeavesClaimsAlone(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner-a", "", 3*s.unit)
	if s.forget(t, "k") {
		t.Fatalf("Forget of an in-progress key reported a deletion")
	}
	s.wantHeld(t, "k", "owner-a")
	s.complete(t, "k", "owner-a", idempotency.Outcome{Value: "v"}, 10*s.unit)
	if rec, found := s.get(t, "k"); !found || rec.State != idempotency.Completed {
		t.Fatalf("after Forget of the claim, Complete by its owner: got %v (found %v); want completed", rec.State, found)
	}
}

// testForeverDurations: a lease, an extension and a TTL of Forever keep
// the record (a store that adds them to its clock without saturating
// makes a record born expired).
func testForeverDurations(t *testing.T, s *suite) {
	far := time.Now().Add(200 * 365 * 24 * time.Hour)
	wantFar := func(what string, rec idempotency.Record) {
		t.Helper()
		if !rec.Expires.IsZero() && rec.Expires.Before(far) {
			t.Fatalf("%s: Expires %v; want the farthest the store can keep", what, rec.Expires)
		}
	}
	rec, claimed := s.claim(t, "k", "owner-a", "", Forever)
	if !claimed {
		t.Fatalf("Claim with lease Forever: not claimed (held by %q)", rec.Owner)
	}
	wantFar("Claim with lease Forever", rec)
	s.advance(s.unit)
	s.wantHeld(t, "k", "owner-a")
	if _, claimed := s.claim(t, "k", "owner-b", "", s.unit); claimed {
		t.Fatal("claimed a key held with lease Forever")
	}
	if err := s.store.Extend(ctx(t), "k", "owner-a", Forever); err != nil {
		t.Fatalf("Extend with lease Forever: %v", err)
	}
	s.advance(s.unit)
	rec, _ = s.get(t, "k")
	wantFar("Extend with lease Forever", rec)
	s.wantHeld(t, "k", "owner-a")
	s.complete(t, "k", "owner-a", idempotency.Outcome{Value: "kept"}, Forever)
	s.advance(s.unit)
	rec, found := s.get(t, "k")
	if !found || rec.State != idempotency.Completed {
		t.Fatalf("after Complete with ttl Forever: Get = %v (found %v); want completed", rec.State, found)
	}
	wantFar("Complete with ttl Forever", rec)
	if _, claimed := s.claim(t, "k", "owner-b", "", s.unit); claimed {
		t.Fatal("claimed a key completed with ttl Forever")
	}
}

// testErrorWithoutMessage: a stored error whose message is empty still
// comes back as an error that says something.
func testErrorWithoutMessage(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner", "", 3*s.unit)
	s.complete(t, "k", "owner", idempotency.Outcome{Err: errors.New("")}, 10*s.unit)
	rec, found := s.get(t, "k")
	if !found || rec.State != idempotency.Completed {
		t.Fatalf("Get after Complete with an error = %v (found %v); want completed", rec.State, found)
	}
	if rec.Err == nil || rec.Err.Error() == "" {
		t.Fatalf("completed record of an error without a message has error %#v; want an error with a message", rec.Err)
	}
}

// Result types for testValueAsAnotherType: charge and chargeCopy have the
// same fields, and encode alike.
type (
	charge     struct{ ID string }
	chargeCopy struct{ ID string }
	refund     struct{ RefundID string }
)

// testValueAsAnotherType: a value read as a type it was not stored as is
// an error wrapping idempotency.ErrDecode, never a zero or made-up value,
// even where the two types encode alike.
func testValueAsAnotherType(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner", "", 3*s.unit)
	s.complete(t, "k", "owner", idempotency.Outcome{Value: charge{ID: "ch_1"}}, 10*s.unit)
	rec, found := s.get(t, "k")
	if !found || rec.State != idempotency.Completed {
		t.Fatalf("Get after Complete = %v (found %v); want completed", rec.State, found)
	}
	wantDecodeError(t, "refund", func() (any, error) { return idempotency.ValueOf[refund](rec) })
	wantDecodeError(t, "chargeCopy", func() (any, error) { return idempotency.ValueOf[chargeCopy](rec) })
	wantDecodeError(t, "*charge", func() (any, error) { return idempotency.ValueOf[*charge](rec) })
	wantDecodeError(t, "string", func() (any, error) { return idempotency.ValueOf[string](rec) })
	got, err := idempotency.ValueOf[charge](rec)
	if err != nil || got != (charge{ID: "ch_1"}) {
		t.Fatalf("ValueOf[charge] = %+v, %v; want the stored charge", got, err)
	}
}

// testNilValueAsAnotherType: a nil value (the result of an operation
// whose result type is an interface) reads as nil into an interface type,
// and is an error wrapping idempotency.ErrDecode for any other type, never
// its zero value.
func testNilValueAsAnotherType(t *testing.T, s *suite) {
	s.mustClaim(t, "k", "owner", "", 3*s.unit)
	s.complete(t, "k", "owner", idempotency.Outcome{Value: nil}, 10*s.unit)
	rec, found := s.get(t, "k")
	if !found || rec.State != idempotency.Completed || rec.Err != nil {
		t.Fatalf("Get after Complete with nil = %v, error %v (found %v); want completed, no error", rec.State, rec.Err, found)
	}
	for as, valueOf := range map[string]func() (any, error){
		"int":     func() (any, error) { return idempotency.ValueOf[int](rec) },
		"string":  func() (any, error) { return idempotency.ValueOf[string](rec) },
		"charge":  func() (any, error) { return idempotency.ValueOf[charge](rec) },
		"*charge": func() (any, error) { return idempotency.ValueOf[*charge](rec) },
		"[]int":   func() (any, error) { return idempotency.ValueOf[[]int](rec) },
	} {
		if v, err := valueOf(); !errors.Is(err, idempotency.ErrDecode) {
			t.Fatalf("a nil read as a %s: %#v, %v; want an error wrapping idempotency.ErrDecode", as, v, err)
		}
	}
	if v, err := idempotency.ValueOf[any](rec); err != nil || v != nil {
		t.Fatalf("ValueOf[any] of a nil = %#v, %v; want nil", v, err)
	}
	if v, err := idempotency.ValueOf[error](rec); err != nil || v != nil {
		t.Fatalf("ValueOf[error] of a nil = %#v, %v; want nil", v, err)
	}
}

func wantDecodeError(t *testing.T, as string, valueOf func() (any, error)) {
	t.Helper()
	v, err := valueOf()
	if !errors.Is(err, idempotency.ErrDecode) {
		t.Fatalf("a charge read as a %s: %#v, %v; want an error wrapping idempotency.ErrDecode", as, v, err)
	}
}

// batch returns the store as a BatchExtender, or skips the case.
func (s *suite) batch(t *testing.T) idempotency.BatchExtender {
	t.Helper()
	be, ok := s.store.(idempotency.BatchExtender)
	if !ok {
		t.Skipf("%T does not implement idempotency.BatchExtender", s.store)
	}
	return be
}

func (s *suite) extendMany(t *testing.T, be idempotency.BatchExtender, claims []idempotency.ClaimRef, lease time.Duration) []error {
	t.Helper()
	errs, err := be.ExtendMany(ctx(t), claims, lease)
	if err != nil {
		t.Fatalf("ExtendMany of %d claims: unexpected error: %v", len(claims), err)
	}
	if len(errs) != len(claims) {
		t.Fatalf("ExtendMany of %d claims returned %d outcomes; want one per claim", len(claims), len(errs))
	}
	return errs
}

func testExtendManyOnlyByOwner(t *testing.T, s *suite) {
	be := s.batch(t)
	if errs := s.extendMany(t, be, nil, 3*s.unit); len(errs) != 0 {
		t.Fatalf("ExtendMany of no claims returned %d outcomes", len(errs))
	}
	if errs, err := be.ExtendMany(ctx(t), []idempotency.ClaimRef{{Key: "k", Owner: "o"}}, 0); err == nil {
		t.Fatalf("ExtendMany with a zero lease: outcomes %v and no error; want an error", errs)
	}
	s.mustClaim(t, "held", "owner-a", "", 3*s.unit)
	s.mustClaim(t, "other", "owner-b", "", 3*s.unit)
	s.mustClaim(t, "done", "owner-a", "", 3*s.unit)
	s.complete(t, "done", "owner-a", idempotency.Outcome{Value: 1}, 10*s.unit)
	claims := []idempotency.ClaimRef{
		{Key: "held", Owner: "owner-a"},
		{Key: "other", Owner: "owner-a"}, // another owner holds it
		{Key: "done", Owner: "owner-a"},  // completed
		{Key: "missing", Owner: "owner-a"},
	}
	errs := s.extendMany(t, be, claims, 6*s.unit)
	if errs[0] != nil {
		t.Fatalf("ExtendMany: the owner's claim: %v; want it extended", errs[0])
	}
	for i, what := range []string{"", "a claim held by another owner", "a completed key", "a missing key"} {
		if i > 0 {
			wantLeaseLost(t, "ExtendMany of "+what, errs[i])
		}
	}
	s.wantHeld(t, "other", "owner-b")
	s.wantMissing(t, "missing")
	if rec, _ := s.get(t, "done"); rec.State != idempotency.Completed {
		t.Fatalf("ExtendMany changed a completed record to %v", rec.State)
	}
}

func testExtendManyKeepsClaims(t *testing.T, s *suite) {
	be := s.batch(t)
	s.mustClaim(t, "a", "owner-a", "", 2*s.unit)
	s.mustClaim(t, "b", "owner-b", "", 2*s.unit)
	s.mustClaim(t, "c", "owner-c", "", 2*s.unit) // not extended
	s.advance(s.unit)
	errs := s.extendMany(t, be, []idempotency.ClaimRef{{Key: "a", Owner: "owner-a"}, {Key: "b", Owner: "owner-b"}}, 4*s.unit)
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("ExtendMany by the owners: %v; want both extended", errs)
	}
	s.advance(2 * s.unit) // past the first leases, within the extension
	s.wantHeld(t, "a", "owner-a")
	s.wantHeld(t, "b", "owner-b")
	s.wantMissing(t, "c")
	s.advance(3 * s.unit) // past the extension
	s.wantMissing(t, "a")
	s.wantMissing(t, "b")
}

func testExtendManyLargeBatch(t *testing.T, s *suite) {
	be := s.batch(t)
	const n = 2500 // more than one chunk of any sensible size
	// A few claims are made, spread over the batch (around chunk
	// boundaries of 100, 500 or 1000); the others are missing, so that a
	// store of little capacity can run the case too.
	made := map[int]bool{0: true, 99: true, 100: true, 499: true, 500: true, 999: true, 1000: true, 1001: true, 2048: true, n - 1: true}
	claims := make([]idempotency.ClaimRef, n)
	for i := range claims {
		claims[i] = idempotency.ClaimRef{Key: fmt.Sprint("large-", i), Owner: fmt.Sprint("owner-", i)}
		if made[i] {
			s.mustClaim(t, claims[i].Key, claims[i].Owner, "", 3*s.unit)
		}
	}
	errs := s.extendMany(t, be, claims, 6*s.unit)
	for i, err := range errs {
		if !made[i] {
			wantLeaseLost(t, fmt.Sprintf("ExtendMany of the missing %s (claim %d of %d)", claims[i].Key, i, n), err)
		} else if err != nil {
			t.Fatalf("ExtendMany: claim %d of %d (%s): %v; want it extended", i, n, claims[i].Key, err)
		}
	}
	s.advance(4 * s.unit) // past the first leases, within the extension
	for i := range made {
		s.wantHeld(t, claims[i].Key, claims[i].Owner)
	}
}
