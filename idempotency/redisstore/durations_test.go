package redisstore_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/redis/go-redis/v9"
)

// forever is math.MaxInt64 as a duration: "keep forever" (issue 14,
// item 1). Rounded up to milliseconds it used to wrap around to a
// negative expiry, and PEXPIRE with a negative time deletes the record.
const forever = time.Duration(math.MaxInt64)

// longAfter is how far away a saturated expiry must be: more than 290
// years.
const longAfter = 290 * 365 * 24 * time.Hour

// pttl returns what Redis has left of key's expiry, in milliseconds. (Not
// client.PTTL: go-redis turns it into a Duration, which wraps around for
// a saturated expiry.)
func pttl(t *testing.T, client *redis.Client, key string) int64 {
	t.Helper()
	ms, err := client.Do(t.Context(), "PTTL", key).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestForeverDurations(t *testing.T) {
	prefix := testPrefix()
	s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix})
	ctx := t.Context()
	wantForever := func(what, key string) {
		t.Helper()
		if ttl := pttl(t, client, prefix+key); ttl < longAfter.Milliseconds() {
			t.Fatalf("%s: the record expires in %d ms; want about 292 years", what, ttl)
		}
		rec, found, err := s.Get(ctx, key)
		if err != nil || !found {
			t.Fatalf("%s: Get found %v, %v; want the record", what, found, err)
		}
		if time.Until(rec.Expires) < longAfter {
			t.Fatalf("%s: Expires %v; want about 292 years from now", what, rec.Expires)
		}
	}

	rec, claimed, err := s.Claim(ctx, "k", "a", "", forever)
	if err != nil || !claimed {
		t.Fatalf("Claim with a forever lease: claimed %v, %v", claimed, err)
	}
	if time.Until(rec.Expires) < longAfter {
		t.Fatalf("Claim with a forever lease: Expires %v; want about 292 years from now", rec.Expires)
	}
	wantForever("Claim", "k")
	if err := s.Extend(ctx, "k", "a", forever); err != nil {
		t.Fatal(err)
	}
	wantForever("Extend", "k")
	if err := s.Complete(ctx, "k", "a", idempotency.Outcome{Value: 7}, forever); err != nil {
		t.Fatal(err)
	}
	wantForever("Complete", "k")
}

// TestManagerForeverDurations runs every duration field of
// idempotency.Config at math.MaxInt64 over Redis, with two Managers (two
// processes): the operation runs once, later calls on either replay it.
func TestManagerForeverDurations(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  idempotency.Config
	}{
		{"TTL", idempotency.Config{TTL: forever}},
		{"Lease", idempotency.Config{Lease: forever}},
		{"TTL and Lease", idempotency.Config{TTL: forever, Lease: forever}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix()
			ms, client := newManagers(t, redisAddr(t), prefix, 2, tc.cfg)
			ctx := t.Context()
			runs := 0
			fn := func(context.Context) (string, error) { runs++; return "receipt", nil }
			for i := range 4 {
				r := idempotency.Execute(ctx, ms[i%2], "k", "", fn)
				if r.Err != nil || r.Value != "receipt" || r.Replayed != (i > 0) {
					t.Fatalf("call %d: %+v; want the receipt, replayed after the first", i, r)
				}
			}
			if runs != 1 {
				t.Fatalf("the operation ran %d times; want once", runs)
			}
			if tc.cfg.TTL == forever {
				if ttl := pttl(t, client, prefix+"k"); ttl < longAfter.Milliseconds() {
					t.Fatalf("the result expires in %d ms; want about 292 years", ttl)
				}
			}
		})
	}
}
