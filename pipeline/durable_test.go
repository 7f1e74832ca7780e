package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
)

// A Stack whose Rollback config names a Journal journals the durable
// compensations of its calls: a failed attempt undoes them in process and
// leaves nothing behind; an attempt whose process "dies" is recovered by
// rollback.Recover; inside the caller's own journaled workflow, a call's
// compensations join that workflow.
func TestStackDurableRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.NewMemory()
		reg := rollback.NewRegistry()
		var (
			mu     sync.Mutex
			undone []string
		)
		cancelOrder, err := rollback.Register(reg, "cancel order", func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			undone = append(undone, id)
			return nil
		})
		require.NoError(t, err)
		rb := rollback.Config{Journal: j, Registry: reg, Owner: "svc-1", Lease: 10 * time.Second}
		s, err := pipeline.New(pipeline.Config{Rollback: &rb})
		require.NoError(t, err)

		// A failed call: undone in process, the journal left empty.
		declined := errors.New("declined")
		_, err = pipeline.Do(t.Context(), s, "orders", func(ctx context.Context) (int, error) {
			if err := cancelOrder.OnRollback(ctx, "o-1"); err != nil {
				return 0, err
			}
			return 0, declined
		})
		require.ErrorIs(t, err, declined)
		assert.Equal(t, []string{"o-1"}, undone)
		assert.Equal(t, 0, j.Len())

		// A call whose process dies mid-way: recovered from the journal.
		hang := make(chan struct{})
		go func() {
			_, _ = pipeline.Do(context.WithoutCancel(t.Context()), s, "orders", func(ctx context.Context) (int, error) {
				if err := cancelOrder.OnRollback(ctx, "o-2"); err != nil {
					return 0, err
				}
				<-hang
				return 0, nil
			})
		}()
		synctest.Wait()
		assert.Equal(t, 1, j.Len())
		time.Sleep(11 * time.Second)
		rep, err := rollback.Recover(t.Context(), j, reg, rollback.WithConfig(rollback.Config{Owner: "recoverer"}))
		require.NoError(t, err)
		require.Len(t, rep.Workflows, 1)
		assert.Equal(t, "svc-1", rep.Workflows[0].PreviousOwner)
		assert.Equal(t, []string{"o-1", "o-2"}, undone)
		close(hang)
		synctest.Wait()

		// Calls inside the caller's journaled workflow join it.
		_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			for _, id := range []string{"o-3", "o-4"} {
				if _, err := pipeline.Do(ctx, s, "orders", func(ctx context.Context) (int, error) {
					return 0, cancelOrder.OnRollback(ctx, id)
				}); err != nil {
					return 0, err
				}
			}
			assert.Equal(t, 1, j.Len(), "one workflow")
			return 0, declined
		}, rollback.WithConfig(rb))
		require.ErrorIs(t, err, declined)
		assert.Equal(t, []string{"o-1", "o-2", "o-4", "o-3"}, undone)
		assert.Equal(t, 0, j.Len())
	})
}
