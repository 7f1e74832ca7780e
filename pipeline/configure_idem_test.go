package pipeline_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
)

// A duplicate in this process of a call in flight waits for it and shares
// its result, even after a Configure of the executor in between (which
// made a new idempotency Manager, with a new table of calls in flight, so
// that the duplicate got ErrInProgress). A Configure that changes the
// idempotency store starts afresh: the duplicate then meets the call only
// in its old store, and runs.
func TestConfigureKeepsIdempotencyFlights(t *testing.T) {
	for name, change := range map[string]func(*pipeline.Config){
		"breaker": func(c *pipeline.Config) { c.Breaker = &breaker.Config{FailureThreshold: 6} },
		"ttl": func(c *pipeline.Config) {
			c.Idempotency = &pipeline.IdempotencyConfig{Config: idempotency.Config{TTL: time.Hour}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}, Breaker: &breaker.Config{FailureThreshold: 5}}
				s, err := pipeline.New(cfg)
				require.NoError(t, err)
				started, release := make(chan struct{}), make(chan struct{})
				first := make(chan pipeline.Result[int], 1)
				go func() {
					first <- pipeline.Execute(t.Context(), s, "x", func(context.Context) (int, error) {
						close(started)
						<-release
						return 1, nil
					}, pipeline.IdempotencyKey("k"))
				}()
				<-started
				change(&cfg)
				require.NoError(t, s.Configure("x", cfg))
				go func() {
					time.Sleep(time.Second)
					close(release)
				}()
				r := pipeline.Execute(t.Context(), s, "x", func(context.Context) (int, error) { return 2, nil }, pipeline.IdempotencyKey("k"))
				require.NoError(t, r.Err, "the in-process duplicate must wait")
				assert.Equal(t, 1, r.Value)
				assert.True(t, r.Replayed)
				assert.Equal(t, 1, (<-first).Value)
			})
		})
	}
}
