package storetest_test

import (
	"context"
	"encoding/json"
	"math"
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

// wrapsForever adds durations to its clock without saturating: a lease or
// TTL of Forever wraps around into a record born expired.
type wrapsForever struct{ *idempotency.MemoryStore }

func wrapped(d time.Duration) time.Duration {
	if d > 1000*time.Hour {
		return time.Nanosecond
	}
	return d
}

func (s wrapsForever) Claim(ctx context.Context, key, owner, fp string, lease time.Duration) (idempotency.Record, bool, error) {
	return s.MemoryStore.Claim(ctx, key, owner, fp, wrapped(lease))
}

func (s wrapsForever) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	return s.MemoryStore.Complete(ctx, key, owner, out, wrapped(ttl))
}

// decodesAnyType keeps values as JSON and decodes them into whatever
// type the caller asks for, as redisstore once did.
type decodesAnyType struct{ *idempotency.MemoryStore }

func (s decodesAnyType) Get(ctx context.Context, key string) (idempotency.Record, bool, error) {
	rec, found, err := s.MemoryStore.Get(ctx, key)
	if found && rec.State == idempotency.Completed && rec.Err == nil {
		data, jerr := json.Marshal(rec.Value)
		if jerr != nil {
			return rec, found, jerr
		}
		rec.Value, rec.Data, rec.Decode = nil, data, json.Unmarshal
	}
	return rec, found, err
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
	"wrapsForever":  func(t *testing.T) idempotency.Store { return wrapsForever{newMemory(t)} },
	"decodesAny":    func(t *testing.T) idempotency.Store { return decodesAnyType{newMemory(t)} },
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
		"wrapsForever":  {"--- FAIL: TestBrokenStoreHelper/ForeverDurations"},
		"decodesAny":    {"--- FAIL: TestBrokenStoreHelper/ValueAsAnotherTypeIsErrDecode"},
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

// TestHugeUnitHelper runs the suite with Options.Unit math.MaxInt64; it only
// runs as a subprocess of TestHugeUnitIsRefused.
func TestHugeUnitHelper(t *testing.T) {
	if os.Getenv("STORETEST_HUGE_UNIT") == "" {
		t.Skip("subprocess of TestHugeUnitIsRefused")
	}
	storetest.RunWith(t, func(t *testing.T) idempotency.Store { return newMemory(t) }, storetest.Options{Unit: math.MaxInt64})
}

// TestHugeUnitIsRefused: a Unit whose multiples would overflow (the suite
// uses up to 10 units) is refused with an error naming the field and the
// maximum, rather than wrapping around into negative leases.
func TestHugeUnitIsRefused(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHugeUnitHelper$")
	cmd.Env = append(os.Environ(), "STORETEST_HUGE_UNIT=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite accepted Unit math.MaxInt64:\n%s", out)
	}
	if want := "storetest: Options.Unit must be between 0 and 1h0m0s, got 2562047h47m16.854775807s"; !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
}
