package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
)

// fromCache is an operation answered by a fallback layer inside it: it
// marks the call's Report as served from cache and returns the old value.
func fromCache(v string) bulwark.Func[string] {
	return func(ctx context.Context) (string, error) {
		bulwark.ReportFrom(ctx).SetFromCache()
		return v, nil
	}
}

// A value a fallback served is never recorded as the operation's result:
// the next call with the key runs the operation.
func TestFallbackValueIsNotRecorded(t *testing.T) {
	for name, withReport := range map[string]bool{"with a Report": true, "without a Report": false} {
		t.Run(name, func(t *testing.T) {
			m := newManager(t, nil, idempotency.Config{})
			ctx := context.Background()
			var report *bulwark.Report
			if withReport {
				ctx, report = bulwark.WithReport(ctx)
			}
			r := idempotency.Execute(ctx, m, "list-cards/request-7", "", fromCache("old list"))
			require.NoError(t, r.Err)
			assert.Equal(t, "old list", r.Value)
			assert.False(t, r.Replayed)
			if withReport {
				assert.True(t, report.FromCache())
				assert.False(t, report.Replayed())
			}

			ran := 0
			r = idempotency.Execute(context.Background(), m, "list-cards/request-7", "", func(context.Context) (string, error) {
				ran++
				return "new list", nil
			})
			require.NoError(t, r.Err)
			assert.Equal(t, 1, ran, "the operation runs: nothing was recorded")
			assert.Equal(t, "new list", r.Value)
			assert.False(t, r.Replayed)

			r = idempotency.Execute(context.Background(), m, "list-cards/request-7", "", fromCache("old list"))
			assert.True(t, r.Replayed, "the real result is recorded and replayed")
			assert.Equal(t, "new list", r.Value)
		})
	}
}

// A duplicate waiting in this process while the leader is answered from
// the cache starts over and runs on its own: it does not share the cached
// value as a replay.
func TestFallbackValueWaitersStartOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, nil, idempotency.Config{})
		release := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := idempotency.Execute(context.Background(), m, "k", "", func(ctx context.Context) (string, error) {
				<-release
				return fromCache("old")(ctx)
			})
			assert.Equal(t, "old", r.Value)
			assert.False(t, r.Replayed)
		}()
		synctest.Wait()
		var ran int
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := idempotency.Execute(context.Background(), m, "k", "", func(context.Context) (string, error) {
				ran++
				return "fresh", nil
			})
			assert.NoError(t, r.Err)
			assert.Equal(t, "fresh", r.Value)
			assert.False(t, r.Replayed)
		}()
		synctest.Wait()
		close(release)
		wg.Wait()
		assert.Equal(t, 1, ran)
	})
}

// A failing release after a fallback answered is reported with the value.
// (The release is retried while the lease holds, so on virtual time.)
func TestFallbackValueReleaseFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &failingRelease{Store: mustMemory(t)}
		m := newManager(t, store, idempotency.Config{})
		r := idempotency.Execute(context.Background(), m, "k", "", fromCache("old"))
		assert.Equal(t, "old", r.Value)
		assert.ErrorIs(t, r.Err, idempotency.ErrStore)
	})
}

type failingRelease struct{ idempotency.Store }

func (s *failingRelease) Release(context.Context, string, string) error {
	return errors.New("connection reset")
}

func mustMemory(t *testing.T) *idempotency.MemoryStore {
	s, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	require.NoError(t, err)
	return s
}

// With CacheErrors, the service's final answer is stored and replayed by
// default; a plain error is not.
func TestDefaultIsPermanent(t *testing.T) {
	declined := bulwark.Final(errors.New("card declined"))
	assert.True(t, idempotency.DefaultIsPermanent(declined))
	assert.True(t, idempotency.DefaultIsPermanent(fmt.Errorf("charge: %w", declined)))
	assert.True(t, idempotency.DefaultIsPermanent(idempotency.Permanent(errors.New("bad"))))
	assert.False(t, idempotency.DefaultIsPermanent(errors.New("503")))
	assert.False(t, idempotency.DefaultIsPermanent(bulwark.ErrRejected))
	assert.False(t, idempotency.DefaultIsPermanent(context.Canceled))

	m := newManager(t, nil, idempotency.Config{CacheErrors: true})
	ran := 0
	charge := func(context.Context) (string, error) { ran++; return "", declined }
	for range 3 {
		_, err := idempotency.Do(context.Background(), m, "charge-1", charge)
		assert.ErrorIs(t, err, bulwark.ErrFinal)
	}
	assert.Equal(t, 1, ran, "the declined charge is replayed, not retried")
}
