package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/storetest"
)

func newMemory(t *testing.T) *idempotency.MemoryStore {
	s, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Broken stores, each violating one rule of the contract.

// claimsAlways reports every claim as successful.
type claimsAlways struct{ *idempotency.MemoryStore }

func (s claimsAlways) Claim(ctx context.Context, key, owner, fp string, lease time.Duration) (idempotency.Record, bool, error) {
	rec, _, err := s.MemoryStore.Claim(ctx, key, owner, fp, lease)
	return rec, err == nil, err
}

// anyOwner lets anyone complete, extend or release a claim.
type anyOwner struct{ *idempotency.MemoryStore }

func (s anyOwner) holder(ctx context.Context, key, owner string) string {
	if rec, found, _ := s.Get(ctx, key); found {
		return rec.Owner
	}
	return owner
}

func (s anyOwner) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	return s.MemoryStore.Complete(ctx, key, s.holder(ctx, key, owner), out, ttl)
}

func (s anyOwner) Release(ctx context.Context, key, owner string) error {
	return s.MemoryStore.Release(ctx, key, s.holder(ctx, key, owner))
}

// neverExpires ignores leases and TTLs.
type neverExpires struct{ *idempotency.MemoryStore }

func (s neverExpires) Claim(ctx context.Context, key, owner, fp string, _ time.Duration) (idempotency.Record, bool, error) {
	return s.MemoryStore.Claim(ctx, key, owner, fp, 1000*time.Hour)
}

func (s neverExpires) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, _ time.Duration) error {
	return s.MemoryStore.Complete(ctx, key, owner, out, 1000*time.Hour)
}

// dropsValues forgets the value of a completed record.
type dropsValues struct{ *idempotency.MemoryStore }

func (s dropsValues) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	return s.MemoryStore.Complete(ctx, key, owner, idempotency.Outcome{Err: out.Err}, ttl)
}

// batchAnyOwner's ExtendMany extends a claim whoever holds it.
type batchAnyOwner struct{ anyOwner }

func (s batchAnyOwner) ExtendMany(ctx context.Context, claims []idempotency.ClaimRef, lease time.Duration) ([]error, error) {
	errs := make([]error, len(claims))
	for i, c := range claims {
		errs[i] = s.MemoryStore.Extend(ctx, c.Key, s.holder(ctx, c.Key, c.Owner), lease)
	}
	return errs, nil
}

// batchNoop's ExtendMany reports every claim extended and extends none.
type batchNoop struct{ *idempotency.MemoryStore }

func (s batchNoop) ExtendMany(_ context.Context, claims []idempotency.ClaimRef, _ time.Duration) ([]error, error) {
	return make([]error, len(claims)), nil
}

var broken = map[string]func(t *testing.T) idempotency.Store{
	"batchAnyOwner": func(t *testing.T) idempotency.Store { return batchAnyOwner{anyOwner{newMemory(t)}} },
	"batchNoop":     func(t *testing.T) idempotency.Store { return batchNoop{newMemory(t)} },
	"claimsAlways":  func(t *testing.T) idempotency.Store { return claimsAlways{newMemory(t)} },
	"anyOwner":      func(t *testing.T) idempotency.Store { return anyOwner{newMemory(t)} },
	"neverExpires":  func(t *testing.T) idempotency.Store { return neverExpires{newMemory(t)} },
	"dropsValues":   func(t *testing.T) idempotency.Store { return dropsValues{newMemory(t)} },
}

// TestBrokenStoreHelper runs the suite against the broken store named by
// STORETEST_BROKEN; it only runs as a subprocess of TestSuiteCatches.
func TestBrokenStoreHelper(t *testing.T) {
	name := os.Getenv("STORETEST_BROKEN")
	if name == "" {
		t.Skip("subprocess of TestSuiteCatches")
	}
	storetest.Run(t, broken[name])
}

func TestSuiteCatches(t *testing.T) {
	wants := map[string][]string{
		"claimsAlways":  {"--- FAIL: TestBrokenStoreHelper/ClaimIsAtomic", "--- FAIL: TestBrokenStoreHelper/ClaimOfHeldKeyReturnsHolder"},
		"anyOwner":      {"--- FAIL: TestBrokenStoreHelper/CompleteOnlyByOwner", "--- FAIL: TestBrokenStoreHelper/ReleaseOnlyByOwner"},
		"neverExpires":  {"--- FAIL: TestBrokenStoreHelper/LeaseExpiry", "--- FAIL: TestBrokenStoreHelper/TTLExpiry"},
		"dropsValues":   {"--- FAIL: TestBrokenStoreHelper/CompleteKeepsValues"},
		"batchAnyOwner": {"--- FAIL: TestBrokenStoreHelper/ExtendManyOnlyByOwner"},
		"batchNoop":     {"--- FAIL: TestBrokenStoreHelper/ExtendManyKeepsClaims", "--- FAIL: TestBrokenStoreHelper/ExtendManyLargeBatch", "--- FAIL: TestBrokenStoreHelper/ExtendManyOnlyByOwner"},
	}
	for name, want := range wants {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "STORETEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a broken store (%s):\n%s", name, out)
			}
			for _, w := range want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestSuitePassesMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store { return newMemory(t) })
}
