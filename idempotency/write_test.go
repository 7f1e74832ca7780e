package idempotency_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
)

// TestCompleteRetriedWhileLeaseHolds: the first three result writes fail
// (a store paused for a moment); the Manager writes again, with backoff,
// and the caller gets its value recorded: no ErrNotRecorded, and a
// duplicate elsewhere replays it instead of running the operation again.
func TestCompleteRetriedWhileLeaseHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		store.failFirst("complete", 3, errors.New("i/o timeout"))
		m := newManager(t, store, idempotency.Config{Lease: 10 * time.Second})
		other := newManager(t, store, idempotency.Config{Lease: 10 * time.Second})
		var runs atomic.Int32
		start := time.Now()
		v, err := idempotency.Do(context.Background(), m, "k", counted(&runs, value("paid")))
		require.NoError(t, err, "recorded on the fourth attempt")
		assert.Equal(t, "paid", v)
		assert.Equal(t, 4, store.count("complete"))
		assert.Less(t, time.Since(start), time.Second, "backoff from 10ms")

		r := idempotency.Execute(context.Background(), other, "k", "", counted(&runs, value("again")))
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed)
		assert.Equal(t, "paid", r.Value)
		assert.Equal(t, int32(1), runs.Load())
	})
}

// TestCompleteOfPermanentErrorRetried: with CacheErrors, a stored
// permanent error is a result write like a value, and retried alike.
func TestCompleteOfPermanentErrorRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		store.failFirst("complete", 2, errors.New("i/o timeout"))
		m := newManager(t, store, idempotency.Config{CacheErrors: true})
		declined := idempotency.Permanent(errors.New("card declined"))
		_, err := idempotency.Do(context.Background(), m, "k", func(context.Context) (int, error) { return 0, declined })
		require.ErrorIs(t, err, declined)
		assert.NotErrorIs(t, err, idempotency.ErrNotRecorded)
		r := idempotency.Execute(context.Background(), m, "k", "", value(1))
		assert.True(t, r.Replayed)
		assert.EqualError(t, r.Err, "card declined")
	})
}

// TestReleaseRetriedWhileLeaseHolds: a failed call's release fails twice,
// then succeeds: the caller gets only its operation's error, and the key
// is free at once for a retry elsewhere.
func TestReleaseRetriedWhileLeaseHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		store.failFirst("release", 2, errors.New("connection reset"))
		m := newManager(t, store, idempotency.Config{})
		other := newManager(t, store, idempotency.Config{})
		errFn := errors.New("service unavailable")
		_, err := idempotency.Do(context.Background(), m, "k", func(context.Context) (int, error) { return 0, errFn })
		require.ErrorIs(t, err, errFn)
		assert.NotErrorIs(t, err, idempotency.ErrStore, "released on the third attempt")
		assert.Equal(t, 3, store.count("release"))
		v, err := idempotency.Do(context.Background(), other, "k", value(2))
		require.NoError(t, err, "the key is free")
		assert.Equal(t, 2, v)
	})
}

// TestReleaseRetriesStopWhenTheCallerGivesUp: the retries of a release
// end with the caller's context (the lease frees the key anyway); those of
// a result's write do not.
func TestReleaseRetriesStopWhenTheCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		store.failOn("release", errors.New("connection reset"))
		m := newManager(t, store, idempotency.Config{Lease: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err := idempotency.Do(ctx, m, "k", func(context.Context) (int, error) { return 0, errors.New("failed") })
		require.ErrorIs(t, err, idempotency.ErrStore)
		assert.Contains(t, err.Error(), "the caller's context ended")
		assert.Equal(t, 5*time.Second, time.Since(start))
	})
}

// TestWriteErrorsThatCannotHealAreNotRetried: a write the store marks
// Permanent (a value its codec cannot encode), and a lost lease, are
// reported at once.
func TestWriteErrorsThatCannotHealAreNotRetried(t *testing.T) {
	for name, serr := range map[string]error{
		"permanent":  idempotency.Permanent(errors.New("json: unsupported type")),
		"lease lost": idempotency.ErrLeaseLost,
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := newJSONStore(nil)
				store.failOn("complete", serr)
				m := newManager(t, store, idempotency.Config{})
				start := time.Now()
				_, err := idempotency.Do(context.Background(), m, "k", value(1))
				require.ErrorIs(t, err, idempotency.ErrNotRecorded)
				assert.Equal(t, 1, store.count("complete"))
				assert.Zero(t, time.Since(start))
			})
		})
	}
}

// landsButFails is a store whose first Complete writes the result and
// then reports a failure, as a write whose answer was lost (a timeout
// after the server ran it).
type landsButFails struct {
	*jsonStore
	failed atomic.Bool
}

func (s *landsButFails) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	if err := s.jsonStore.Complete(ctx, key, owner, out, ttl); err != nil || s.failed.Swap(true) {
		return err
	}
	return errors.New("i/o timeout")
}

// TestCompleteWhoseAnswerWasLost: the first write landed but its answer
// was lost; the retry is told the claim is gone (already completed), and
// the Manager finds the result is its own: the caller sees success, not
// ErrNotRecorded.
func TestCompleteWhoseAnswerWasLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &landsButFails{jsonStore: newJSONStore(nil)}
		m := newManager(t, store, idempotency.Config{})
		v, err := idempotency.Do(context.Background(), m, "k", value("paid"))
		require.NoError(t, err)
		assert.Equal(t, "paid", v)
		assert.Equal(t, 2, store.count("complete"))

		// A result completed by another owner is not taken for ours.
		m2 := newManager(t, &stolen{Store: newMemory(t, 0)}, idempotency.Config{})
		_, err = idempotency.Do(context.Background(), m2, "k", value("mine"))
		assert.ErrorIs(t, err, idempotency.ErrNotRecorded)
		assert.ErrorIs(t, err, idempotency.ErrLeaseLost)
	})
}

// stolen is a store whose first Complete times out and whose second finds
// the key completed by another owner (the lease ran out meanwhile).
type stolen struct {
	idempotency.Store
	calls atomic.Int32
}

func (s *stolen) Complete(context.Context, string, string, idempotency.Outcome, time.Duration) error {
	if s.calls.Add(1) == 1 {
		return errors.New("i/o timeout")
	}
	return idempotency.ErrLeaseLost
}

func (s *stolen) Get(context.Context, string) (idempotency.Record, bool, error) {
	return idempotency.Record{State: idempotency.Completed, Owner: "another owner"}, true, nil
}
