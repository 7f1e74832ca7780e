package idempotency_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
)

// TestStoresAndKeysInvalidInput: nil and invalid input to the memory store,
// Key and the durations of New is an error wrapping ErrInvalid, never a
// panic, and changes nothing.
func TestStoresAndKeysInvalidInput(t *testing.T) {
	s := newMemory(t, 0)
	ctx := context.Background()
	var nilStore *idempotency.MemoryStore
	_, claimed, err := s.Claim(ctx, "held", "o", "", time.Minute)
	require.NoError(t, err)
	require.True(t, claimed)

	_, negEntries := idempotency.NewMemoryStore(idempotency.MemoryConfig{MaxEntries: -1})
	_, negTTL := idempotency.New(nil, idempotency.Config{TTL: -time.Second})
	_, negLease := idempotency.New(nil, idempotency.Config{Lease: -time.Second})
	_, noParts := idempotency.Key()
	_, funcPart := idempotency.Key("ns", func() {})
	_, _, zeroLease := s.Claim(ctx, "k", "o", "", 0)
	_, _, nilClaim := nilStore.Claim(ctx, "k", "o", "", time.Minute)
	_, _, nilGet := nilStore.Get(ctx, "k")
	_, nilForget := nilStore.Forget(ctx, "k")
	for name, err := range map[string]error{
		"NewMemoryStore MaxEntries -1": negEntries,
		"New TTL -1s":                  negTTL,
		"New Lease -1s":                negLease,
		"Key()":                        noParts,
		"Key of a func":                funcPart,
		"Claim with lease 0":           zeroLease,
		"Extend with lease -1s":        s.Extend(ctx, "held", "o", -time.Second),
		"Complete with ttl 0":          s.Complete(ctx, "held", "o", idempotency.Outcome{Value: 1}, 0),
		"nil store: Claim":             nilClaim,
		"nil store: Extend":            nilStore.Extend(ctx, "k", "o", time.Minute),
		"nil store: Complete":          nilStore.Complete(ctx, "k", "o", idempotency.Outcome{}, time.Minute),
		"nil store: Release":           nilStore.Release(ctx, "k", "o"),
		"nil store: Get":               nilGet,
		"nil store: Forget":            nilForget,
	} {
		assert.ErrorIs(t, err, idempotency.ErrInvalid, name)
	}
	assert.ErrorIs(t, funcPart, idempotency.ErrInvalidKeyPart)
	assert.Zero(t, nilStore.Len())
	assert.Equal(t, 1, s.Len(), "an invalid call added a record")
	rec, found, err := s.Get(ctx, "held")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, idempotency.InProgress, rec.State, "an invalid call changed the claim")
}
