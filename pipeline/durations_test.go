package pipeline_test

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
)

// Every duration field of every layer at math.MaxInt64 ("as long as
// possible"), through the whole stack: calls run once, results replay,
// failures are answered from the cache, and nothing wraps around into an
// instant expiry or timeout.
func TestEveryDurationAtMaxInt64(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const forever = time.Duration(math.MaxInt64)
		cfg := pipeline.Unreliable()
		cfg.Idempotency.TTL = forever
		cfg.Idempotency.Lease = forever
		cfg.Fallback.MaxAge = forever
		cfg.Breaker.FailureWindow = forever
		cfg.Breaker.ResetTimeout = forever
		cfg.Breaker.RequestTimeout = forever
		cfg.Retry.InitialInterval = forever
		cfg.Retry.MaxInterval = forever
		cfg.Retry.MaxElapsedTime = forever
		cfg.Retry.MaxRetryAfter = forever
		cfg.Retry.MaxAttempts = 1
		cfg.Rollback.Timeout = forever
		cfg.Rollback.InitialInterval = forever
		s := newStack(t, cfg)
		ctx := t.Context()

		ran := 0
		create := func(context.Context) (string, error) { ran++; return "page", nil }
		key := pipeline.IdempotencyKeyParts("create-page", "retro")
		for range 3 {
			r := pipeline.Execute(ctx, s, "notion", create, key)
			require.NoError(t, r.Err)
			assert.Equal(t, "page", r.Value)
		}
		assert.Equal(t, 1, ran, "the record is not born expired")
		time.Sleep(365 * 24 * time.Hour)
		r := pipeline.Execute(ctx, s, "notion", create, key)
		assert.True(t, r.Replayed, "a year later, still replayed")

		fb := pipeline.FallbackKey("get-page")
		require.NoError(t, pipeline.Execute(ctx, s, "notion", create, fb).Err)
		time.Sleep(365 * 24 * time.Hour)
		for range 3 {
			r := pipeline.Execute(ctx, s, "notion", failing(503), fb)
			require.NoError(t, r.Err)
			assert.True(t, r.FromCache)
		}
		b := s.Breaker("notion")
		assert.Equal(t, breaker.Open, b.State())
		time.Sleep(100 * 365 * 24 * time.Hour)
		synctest.Wait()
		r = pipeline.Execute(ctx, s, "notion", create, fb)
		assert.True(t, r.Rejected, "the reset timeout has not passed after a century")
		assert.True(t, r.FromCache)
	})
}
