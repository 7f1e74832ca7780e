package idempotency_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/storetest"
)

func newMemory(t *testing.T, maxEntries int) *idempotency.MemoryStore {
	t.Helper()
	s, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{MaxEntries: maxEntries})
	require.NoError(t, err)
	return s
}

func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store { return newMemory(t, 0) })
}

func TestMemoryStoreContractSmall(t *testing.T) {
	// One shard, little room: the contract holds while eviction works.
	storetest.Run(t, func(t *testing.T) idempotency.Store { return newMemory(t, 200) })
}

func TestNewMemoryStoreRejectsNegativeMaxEntries(t *testing.T) {
	_, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{MaxEntries: -1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MaxEntries")
}

func TestMemoryStoreRejectsNonPositiveDurations(t *testing.T) {
	s := newMemory(t, 0)
	ctx := context.Background()
	_, _, err := s.Claim(ctx, "k", "o", "", 0)
	assert.ErrorContains(t, err, "lease must be positive")
	_, claimed, err := s.Claim(ctx, "k", "o", "", time.Minute)
	require.NoError(t, err)
	require.True(t, claimed)
	assert.ErrorContains(t, s.Extend(ctx, "k", "o", -time.Second), "lease must be positive")
	assert.ErrorContains(t, s.Complete(ctx, "k", "o", idempotency.Outcome{}, 0), "ttl must be positive")
	rec, _, _ := s.Get(ctx, "k")
	assert.Equal(t, idempotency.InProgress, rec.State, "a rejected call changes nothing")
}

func TestMemoryStoreKeepsGoValuesAndErrors(t *testing.T) {
	s := newMemory(t, 0)
	ctx := context.Background()
	type big struct{ data []int }
	v := &big{data: []int{1, 2, 3}}
	_, _, _ = s.Claim(ctx, "v", "o", "", time.Minute)
	require.NoError(t, s.Complete(ctx, "v", "o", idempotency.Outcome{Value: v}, time.Hour))
	rec, found, err := s.Get(ctx, "v")
	require.NoError(t, err)
	require.True(t, found)
	assert.Nil(t, rec.Decode, "no serialization")
	assert.Same(t, v, rec.Value, "the very value, not a copy")

	_, _, _ = s.Claim(ctx, "e", "o", "", time.Minute)
	cause := fmt.Errorf("charge: %w", io.ErrUnexpectedEOF)
	require.NoError(t, s.Complete(ctx, "e", "o", idempotency.Outcome{Value: "ignored", Err: cause}, time.Hour))
	rec, _, _ = s.Get(ctx, "e")
	assert.ErrorIs(t, rec.Err, io.ErrUnexpectedEOF, "the original error value")
	assert.Nil(t, rec.Value, "no value is kept with an error")
}

func TestMemoryStoreEvictsCompletedClosestToExpiryWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const max = 100 // one shard
		s := newMemory(t, max)
		ctx := context.Background()
		for i := range max {
			key := fmt.Sprint("k", i)
			_, claimed, err := s.Claim(ctx, key, "o", "", time.Minute)
			require.NoError(t, err)
			require.True(t, claimed)
			if i < max-10 {
				// Completed in order: k0 expires first.
				require.NoError(t, s.Complete(ctx, key, "o", idempotency.Outcome{Value: i}, time.Hour))
				time.Sleep(time.Second)
			}
		}
		require.Equal(t, max, s.Len())

		_, claimed, err := s.Claim(ctx, "new", "o", "", time.Minute)
		require.NoError(t, err)
		require.True(t, claimed)
		assert.Equal(t, max, s.Len(), "bounded")
		_, found, _ := s.Get(ctx, "k0")
		assert.False(t, found, "the completed record closest to expiry is evicted")
		_, found, _ = s.Get(ctx, "k1")
		assert.True(t, found)
		for i := max - 10; i < max; i++ {
			rec, found, _ := s.Get(ctx, fmt.Sprint("k", i))
			assert.True(t, found && rec.State == idempotency.InProgress, "in-progress claims are never evicted")
		}
	})
}

func TestMemoryStoreFullOfClaimsFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const max = 50
		s := newMemory(t, max)
		ctx := context.Background()
		for i := range max {
			_, claimed, err := s.Claim(ctx, fmt.Sprint("k", i), "o", "", time.Minute)
			require.NoError(t, err)
			require.True(t, claimed)
		}
		_, claimed, err := s.Claim(ctx, "one-too-many", "o", "", time.Minute)
		require.Error(t, err)
		assert.False(t, claimed)
		assert.Contains(t, err.Error(), "MaxEntries")

		// Once leases run out, their room is reused.
		time.Sleep(2 * time.Minute)
		_, claimed, err = s.Claim(ctx, "one-too-many", "o", "", time.Minute)
		require.NoError(t, err)
		assert.True(t, claimed)
		assert.Equal(t, 1, s.Len(), "expired claims were dropped")
	})
}

func TestMemoryStoreDropsExpiredRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t, 0)
		ctx := context.Background()
		for i := range 1000 {
			key := fmt.Sprint("k", i)
			_, _, _ = s.Claim(ctx, key, "o", "", time.Minute)
			require.NoError(t, s.Complete(ctx, key, "o", idempotency.Outcome{Value: i}, time.Hour))
		}
		require.Equal(t, 1000, s.Len())
		time.Sleep(2 * time.Hour)
		// Claims drop what expired in their shard; claim in every shard.
		for i := range 5000 {
			key := fmt.Sprint("fresh", i)
			_, _, _ = s.Claim(ctx, key, "o", "", time.Minute)
			require.NoError(t, s.Release(ctx, key, "o"))
		}
		assert.Zero(t, s.Len(), "expired records and released claims are gone")
	})
}

func TestMemoryStoreReleasedClaimsDoNotAccumulate(t *testing.T) {
	// An operation that always fails claims and releases its key again and
	// again; the expiry bookkeeping must not grow without bound.
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t, 64) // one shard
		ctx := context.Background()
		for i := range 10_000 {
			_, claimed, err := s.Claim(ctx, "flaky", fmt.Sprint("o", i), "", time.Minute)
			require.NoError(t, err)
			require.True(t, claimed)
			require.NoError(t, s.Release(ctx, "flaky", fmt.Sprint("o", i)))
			time.Sleep(time.Second)
		}
		assert.Zero(t, idempotency.MemoryExpiryLen(s), "released claims leave no bookkeeping behind")
		assert.Zero(t, s.Len())
	})
}

func TestMemoryStoreParallel(t *testing.T) {
	s := newMemory(t, 1000)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprint(g, "-", i%300)
				owner := fmt.Sprint(g, "/", i)
				rec, claimed, err := s.Claim(ctx, key, owner, "", time.Minute)
				if err != nil {
					assert.ErrorContains(t, err, "MaxEntries")
					continue
				}
				if claimed {
					assert.NoError(t, s.Complete(ctx, key, owner, idempotency.Outcome{Value: i}, time.Hour))
				} else {
					assert.Equal(t, idempotency.Completed, rec.State)
				}
				_, _, _ = s.Get(ctx, key)
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, s.Len(), 1000)
}
