package prometheus

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// Refusals by the load layers count in bulwark_rejections_total under
// their layer.
func TestLoadRejections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := pipeline.New(pipeline.Config{})
		require.NoError(t, err)
		require.NoError(t, s.Configure("bh", pipeline.Config{Bulkhead: &bulkhead.Config{MaxConcurrent: 1}}))
		require.NoError(t, s.Configure("rl", pipeline.Config{RateLimit: &ratelimit.Config{Rate: 1, MaxWait: -1}}))
		c, err := NewCollector(s, Config{})
		require.NoError(t, err)
		defer c.Close()

		ctx := t.Context()
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := pipeline.Do(ctx, s, "bh", serve(new(bool), time.Second))
			assert.NoError(t, err)
		})
		synctest.Wait() // the first call has the only slot
		_, err = pipeline.Do(ctx, s, "bh", serve(new(bool), 0))
		assert.ErrorIs(t, err, bulwark.ErrRejected)
		wg.Wait()
		_, err = pipeline.Do(ctx, s, "rl", serve(new(bool), 0))
		require.NoError(t, err)
		_, err = pipeline.Do(ctx, s, "rl", serve(new(bool), 0))
		assert.ErrorIs(t, err, bulwark.ErrRejected)

		n, err := testutil.GatherAndCount(registry(t, c), "bulwark_rejections_total")
		require.NoError(t, err)
		assert.Equal(t, 2, n, "only the two layers that refused")
		assert.Equal(t, 1.0, testutil.ToFloat64(c.rejections.WithLabelValues("bh", "bulkhead")))
		assert.Equal(t, 1.0, testutil.ToFloat64(c.rejections.WithLabelValues("rl", "ratelimit")))
	})
}
