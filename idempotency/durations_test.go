package idempotency_test

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
)

// forever is math.MaxInt64 as a duration: the usual way to say "keep
// forever", and the input of issue 14's item 1.
const forever = time.Duration(math.MaxInt64)

// TestMemoryStoreForeverDurations: a lease or TTL of math.MaxInt64 used to
// wrap around into a record born expired.
func TestMemoryStoreForeverDurations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t, 0)
		ctx := context.Background()
		far := time.Now().Add(200 * 365 * 24 * time.Hour)

		rec, claimed, err := s.Claim(ctx, "k", "a", "", forever)
		require.NoError(t, err)
		require.True(t, claimed)
		assert.True(t, rec.Expires.After(far), "a forever lease expires at %v", rec.Expires)
		time.Sleep(365 * 24 * time.Hour)
		_, claimed, err = s.Claim(ctx, "k", "b", "", time.Minute)
		require.NoError(t, err)
		assert.False(t, claimed, "a forever lease ran out")

		require.NoError(t, s.Extend(ctx, "k", "a", forever))
		time.Sleep(365 * 24 * time.Hour)
		require.NoError(t, s.Complete(ctx, "k", "a", idempotency.Outcome{Value: 7}, forever))
		time.Sleep(365 * 24 * time.Hour)
		rec, found, err := s.Get(ctx, "k")
		require.NoError(t, err)
		require.True(t, found, "a forever TTL ran out")
		assert.Equal(t, idempotency.Completed, rec.State)
		assert.True(t, rec.Expires.After(far), "a forever TTL expires at %v", rec.Expires)
	})
}

// TestManagerForeverDurations runs every duration field of Config at
// math.MaxInt64 over the memory store: the operation runs once, and later
// calls, a year later, replay it.
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
			synctest.Test(t, func(t *testing.T) {
				m := newManager(t, nil, tc.cfg)
				var runs atomic.Int32
				fn := counted(&runs, value("receipt"))
				ctx := context.Background()
				for i := range 3 {
					r := idempotency.Execute(ctx, m, "k", "", fn)
					require.NoError(t, r.Err)
					assert.Equal(t, "receipt", r.Value)
					assert.Equal(t, i > 0, r.Replayed, "call %d", i)
					if tc.cfg.TTL == forever {
						time.Sleep(365 * 24 * time.Hour)
					} else {
						time.Sleep(time.Hour) // within the default TTL
					}
				}
				assert.Equal(t, int32(1), runs.Load(), "the operation ran again")
			})
		})
	}
}
