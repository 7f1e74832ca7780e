package redisstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/redis/go-redis/v9"
)

// TestInvalidInput: nil and invalid input is an error wrapping ErrInvalid
// (and idempotency.ErrInvalid), never a panic, and changes nothing.
func TestInvalidInput(t *testing.T) {
	prefix := testPrefix()
	s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix})
	ctx := t.Context()
	var nilStore *redisstore.Store
	var typedNil *redis.Client
	_, nilClientErr := redisstore.New(nil, redisstore.Config{})
	_, typedNilErr := redisstore.New(typedNil, redisstore.Config{})
	_, badURLErr := redisstore.Dial(ctx, "http://127.0.0.1:1", redisstore.Config{})
	_, _, zeroLease := s.Claim(ctx, "k", "owner", "", 0)
	_, _, negLease := s.Claim(ctx, "k", "owner", "", -time.Second)
	_, _, nilClaim := nilStore.Claim(ctx, "k", "owner", "", time.Minute)
	_, _, nilGet := nilStore.Get(ctx, "k")
	_, nilForget := nilStore.Forget(ctx, "k")
	if _, _, err := s.Claim(ctx, "held", "owner", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"New(nil)":                  nilClientErr,
		"New((*redis.Client)(nil))": typedNilErr,
		"Dial(http://...)":          badURLErr,
		"Claim with lease 0":        zeroLease,
		"Claim with lease -1s":      negLease,
		"Extend with lease 0":       s.Extend(ctx, "held", "owner", 0),
		"Complete with ttl 0":       s.Complete(ctx, "held", "owner", idempotency.Outcome{Value: 1}, 0),
		"Complete with ttl -1s":     s.Complete(ctx, "held", "owner", idempotency.Outcome{Value: 1}, -time.Second),
		"nil Store: Claim":          nilClaim,
		"nil Store: Extend":         nilStore.Extend(ctx, "k", "owner", time.Minute),
		"nil Store: Complete":       nilStore.Complete(ctx, "k", "owner", idempotency.Outcome{}, time.Minute),
		"nil Store: Release":        nilStore.Release(ctx, "k", "owner"),
		"nil Store: Get":            nilGet,
		"nil Store: Forget":         nilForget,
	} {
		if !errors.Is(err, redisstore.ErrInvalid) || !errors.Is(err, idempotency.ErrInvalid) {
			t.Errorf("%s: %v; want an error wrapping redisstore.ErrInvalid and idempotency.ErrInvalid", name, err)
		}
	}
	if n := client.Exists(ctx, prefix+"k").Val(); n != 0 {
		t.Fatal("an invalid Claim created a record")
	}
	if rec, _, err := s.Get(ctx, "held"); err != nil || rec.State != idempotency.InProgress {
		t.Fatalf("after invalid calls the claim is %v (%v); want it unchanged", rec.State, err)
	}
	if err := nilStore.Close(); err != nil {
		t.Fatalf("Close of a nil Store: %v", err)
	}
}
