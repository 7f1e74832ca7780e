package idempotency_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
)

// churnOps is the number of operations of the churn tests: 1e6, or 1e5
// under the race detector or -short.
func churnOps(t *testing.T) int {
	if raceEnabled || testing.Short() {
		return 100_000
	}
	return 1_000_000
}

// heapInUse returns the bytes of live heap objects after a full
// collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryStoreBoundedUnderChurn is issue 14's item 6: a million
// claim/complete/forget cycles on a store capped at 1,000 records used to
// grow the heap by about 50 MiB (one expiry item per forgotten record,
// kept until its TTL) while Len() was 0. Each kind of churn must leave the
// heap within a small bound.
func TestMemoryStoreBoundedUnderChurn(t *testing.T) {
	const maxEntries = 1000
	// The expiry index never holds more than 2×MaxEntries + 64 per shard.
	const maxExpiryItems = 2*maxEntries + 64*64
	churns := []struct {
		name string
		op   func(ctx context.Context, s *idempotency.MemoryStore, i int) error
	}{
		{"claim/complete/forget", func(ctx context.Context, s *idempotency.MemoryStore, i int) error {
			key := strconv.Itoa(i)
			if _, _, err := s.Claim(ctx, key, "o", "", time.Minute); err != nil {
				return err
			}
			if err := s.Complete(ctx, key, "o", idempotency.Outcome{Value: i}, 24*time.Hour); err != nil {
				return err
			}
			_, err := s.Forget(ctx, key)
			return err
		}},
		{"claim/complete/forget forever", func(ctx context.Context, s *idempotency.MemoryStore, i int) error {
			key := strconv.Itoa(i)
			if _, _, err := s.Claim(ctx, key, "o", "", forever); err != nil {
				return err
			}
			if err := s.Complete(ctx, key, "o", idempotency.Outcome{Value: i}, forever); err != nil {
				return err
			}
			_, err := s.Forget(ctx, key)
			return err
		}},
		{"claim/release", func(ctx context.Context, s *idempotency.MemoryStore, i int) error {
			key := strconv.Itoa(i)
			if _, _, err := s.Claim(ctx, key, "o", "", time.Minute); err != nil {
				return err
			}
			return s.Release(ctx, key, "o")
		}},
		{"re-claims of expired keys", func(ctx context.Context, s *idempotency.MemoryStore, i int) error {
			// A few keys, each claimed or completed with a short lease or
			// TTL and claimed again after it ran out.
			key := strconv.Itoa(i % 100)
			if _, claimed, err := s.Claim(ctx, key, strconv.Itoa(i), "", time.Millisecond); err != nil || !claimed {
				return err
			}
			if i%2 == 0 {
				return s.Complete(ctx, key, strconv.Itoa(i), idempotency.Outcome{Value: i}, time.Millisecond)
			}
			return nil
		}},
		{"completions evicted when full", func(ctx context.Context, s *idempotency.MemoryStore, i int) error {
			key := strconv.Itoa(i)
			if _, _, err := s.Claim(ctx, key, "o", "", time.Minute); err != nil {
				return err
			}
			return s.Complete(ctx, key, "o", idempotency.Outcome{Value: i}, 24*time.Hour)
		}},
	}
	for _, c := range churns {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newMemory(t, maxEntries)
				ctx := context.Background()
				ops := churnOps(t)
				before := heapInUse()
				for i := range ops {
					if err := c.op(ctx, s, i); err != nil {
						require.NoError(t, err, "operation %d", i)
					}
					if i%100 == 99 {
						time.Sleep(time.Millisecond) // virtual: lets short leases and TTLs run out
					}
				}
				after := heapInUse()
				assert.LessOrEqual(t, s.Len(), maxEntries)
				assert.LessOrEqual(t, idempotency.MemoryExpiryLen(s), maxExpiryItems)
				growth := int64(after) - int64(before)
				assert.Less(t, growth, int64(4<<20), "heap grew by %d bytes over %d operations", growth, ops)
				runtime.KeepAlive(s)
			})
		})
	}
}

// Forget, claim, complete, forget... on the same keys: each cycle turns a
// forgotten key's entry into a new claim, whose old expiry item is stale;
// the heap stays bounded all the same.
func TestMemoryStoreBoundedUnderGenerationChurn(t *testing.T) {
	s, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{MaxEntries: 1000})
	require.NoError(t, err)
	ctx := context.Background()
	n := churnOps(t) / 10
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		key := "k" + strconv.Itoa(i%100)
		_, claimed, err := s.Claim(ctx, key, "o", "", time.Hour)
		require.NoError(t, err)
		require.True(t, claimed)
		require.NoError(t, s.Complete(ctx, key, "o", idempotency.Outcome{Value: i}, 24*time.Hour))
		forgotten, err := s.Forget(ctx, key)
		require.NoError(t, err)
		require.True(t, forgotten)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, growth, int64(1<<20), "heap grew by %d bytes", growth)
	assert.LessOrEqual(t, idempotency.MemoryExpiryLen(s), 2*s.Len()+64*64)
	rec, _, err := s.Claim(ctx, "k7", "o", "", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, uint64(n/100), rec.Generation, "every cycle advanced the generation")
}
