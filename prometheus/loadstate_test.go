package prometheus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// loadStack has one executor per load layer, and one without any: bh, a
// bulkhead of 2 slots and a queue of 2; rl, a rate limiter of one call a
// second; rb, 2 attempts per call under a retry budget of one retry per
// 10s window (a floor of half a retry, a ratio next to nothing); plain, a
// breaker only.
func loadStack(t *testing.T) *pipeline.Stack {
	s, err := pipeline.New(pipeline.Config{})
	require.NoError(t, err)
	require.NoError(t, s.Configure("bh", pipeline.Config{Bulkhead: &bulkhead.Config{MaxConcurrent: 2, MaxWaiting: 2}}))
	require.NoError(t, s.Configure("rl", pipeline.Config{RateLimit: &ratelimit.Config{Rate: 1}}))
	require.NoError(t, s.Configure("rb", pipeline.Config{Retry: &retry.Config{
		MaxAttempts: 2, InitialInterval: 100 * time.Millisecond, NoJitter: true,
		Budget: &retry.Budget{Ratio: 1e-6, MinPerSecond: 0.05, Window: 10 * time.Second},
	}}))
	require.NoError(t, s.Configure("plain", pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}}))
	return s
}

// loadUp puts loadStack's layers under load: 3 calls through bh that
// block until release is closed (2 hold the slots, 1 waits in the queue);
// 3 failing calls through rb (the first retried, the other two refused
// by the budget); 3 calls through rl, the last two delayed a second each,
// the last failing with a Retry-After of 30s that pauses the limiter.
// done ends when bh's calls have returned without error.
func loadUp(t *testing.T, s *pipeline.Stack, release <-chan struct{}) (done func()) {
	ctx := t.Context()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			_, err := pipeline.Do(ctx, s, "bh", func(context.Context) (*page, error) {
				<-release
				return thePage, nil
			})
			assert.NoError(t, err)
		})
	}
	synctest.Wait()

	down := true
	for range 3 {
		_, err := pipeline.Do(ctx, s, "rb", serve(&down, 0))
		require.Error(t, err)
	}

	for range 2 {
		_, err := pipeline.Do(ctx, s, "rl", serve(new(bool), 0))
		require.NoError(t, err)
	}
	_, err := pipeline.Do(ctx, s, "rl", func(context.Context) (*page, error) {
		return nil, retry.After(err503, 30*time.Second)
	})
	require.ErrorIs(t, err, err503)
	return wg.Wait
}

var loadSeries = []string{
	"bulwark_bulkhead_in_flight", "bulwark_bulkhead_limit", "bulwark_bulkhead_waiting",
	"bulwark_ratelimit_pause_remaining_seconds", "bulwark_ratelimit_delayed_total", "bulwark_retry_budget_refused_total",
}

const loadHelp = `
# HELP bulwark_bulkhead_in_flight Bulkhead slots in use: attempts running now through the executor's bulkhead.
# TYPE bulwark_bulkhead_in_flight gauge
bulwark_bulkhead_in_flight{executor="bh"} %d
# HELP bulwark_bulkhead_limit Bulkhead slots in all: the executor's bulkhead MaxConcurrent.
# TYPE bulwark_bulkhead_limit gauge
bulwark_bulkhead_limit{executor="bh"} 2
# HELP bulwark_bulkhead_waiting Calls waiting now in the queue of the executor's bulkhead for a slot.
# TYPE bulwark_bulkhead_waiting gauge
bulwark_bulkhead_waiting{executor="bh"} %d
# HELP bulwark_ratelimit_pause_remaining_seconds Seconds left of the executor's rate limiter pause (a Retry-After), 0 when it is not paused.
# TYPE bulwark_ratelimit_pause_remaining_seconds gauge
bulwark_ratelimit_pause_remaining_seconds{executor="rl"} %d
# HELP bulwark_ratelimit_delayed_total Calls the executor's rate limiter let through after making them wait (for a token or a pause).
# TYPE bulwark_ratelimit_delayed_total counter
bulwark_ratelimit_delayed_total{executor="rl"} %d
# HELP bulwark_retry_budget_refused_total Retries the executor's retry budget refused.
# TYPE bulwark_retry_budget_refused_total counter
bulwark_retry_budget_refused_total{executor="rb"} %d
`

func wantLoad(inFlight, waiting, pause, delayed, refused int) *strings.Reader {
	return strings.NewReader(fmt.Sprintf(loadHelp, inFlight, waiting, pause, delayed, refused))
}

// The state of the load layers is read from Stack.Stats() at scrape, on a
// pedantic registry: a bulkhead held full by blocked calls shows its
// slots in use, its limit and its queue; a rate limiter paused by a
// Retry-After shows the seconds left and the calls it delayed; a retry
// budget shows the retries it refused. Only the executors that have the
// layer have its series, and the gauges follow the layers as they drain.
func TestLoadLayerState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := loadStack(t)
		c, err := NewCollector(s, Config{})
		require.NoError(t, err)
		defer c.Close()
		reg := registry(t, c)
		require.NoError(t, testutil.GatherAndCompare(reg, wantLoad(0, 0, 0, 0, 0), loadSeries...), "zeros from the start")

		release := make(chan struct{})
		done := loadUp(t, s, release)
		require.NoError(t, testutil.GatherAndCompare(reg, wantLoad(2, 1, 30, 2, 2), loadSeries...), "under load")

		time.Sleep(10 * time.Second)
		close(release)
		done()
		require.NoError(t, testutil.GatherAndCompare(reg, wantLoad(0, 0, 20, 2, 2), loadSeries...), "drained, 10s later")

		time.Sleep(20 * time.Second)
		require.NoError(t, testutil.GatherAndCompare(reg, wantLoad(0, 0, 0, 2, 2), loadSeries...), "the pause over")
	})
}

// With NoEvents the load series are there too (they come from Stats); a
// stack whose executors have none of the layers has none of them.
func TestLoadLayerStateOnlyWithTheLayer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := NewCollector(loadStack(t), Config{NoEvents: true})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, testutil.GatherAndCompare(registry(t, c), wantLoad(0, 0, 0, 0, 0), loadSeries...))

		bare, err := pipeline.New(pipeline.Config{})
		require.NoError(t, err)
		require.NoError(t, bare.Configure("plain", pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}}))
		c2, err := NewCollector(bare, Config{})
		require.NoError(t, err)
		defer c2.Close()
		reg := registry(t, c2)
		n, err := testutil.GatherAndCount(reg, "bulwark_circuit_state")
		require.NoError(t, err)
		assert.Equal(t, 1, n, "the breaker's series")
		n, err = testutil.GatherAndCount(reg, loadSeries...)
		require.NoError(t, err)
		assert.Zero(t, n)
	})
}
