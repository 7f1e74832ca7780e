package prometheus

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
)

// Calls on several executors from many goroutines, scraped while they
// run, are all counted once (run with -race).
func TestConcurrentCalls(t *testing.T) {
	s, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}})
	require.NoError(t, err)
	c, err := NewCollector(s, Config{})
	require.NoError(t, err)
	defer c.Close()
	reg := registry(t, c)

	const goroutines, calls, executors = 8, 200, 4
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				_, err := pipeline.Do(t.Context(), s, fmt.Sprint("exec-", (g+i)%executors), serve(new(bool), 0))
				assert.NoError(t, err)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			_, err := reg.Gather()
			assert.NoError(t, err)
		}
	})
	wg.Wait()

	for e := range executors {
		assert.Equal(t, float64(goroutines*calls/executors), gatheredValue(t, reg, "bulwark_calls_total", fmt.Sprint("exec-", e), "success"))
	}
	n, err := testutil.GatherAndCount(reg, "bulwark_circuit_state")
	require.NoError(t, err)
	assert.Equal(t, executors, n)
}
