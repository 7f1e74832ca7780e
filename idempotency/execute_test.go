package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newManager(t *testing.T, store idempotency.Store, cfg idempotency.Config) *idempotency.Manager {
	t.Helper()
	m, err := idempotency.New(store, cfg)
	require.NoError(t, err)
	return m
}

// events records a Manager's events.
type events struct {
	mu   sync.Mutex
	list []bulwark.Event
}

func (e *events) listen(ev bulwark.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func (e *events) kinds() []bulwark.EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var kinds []bulwark.EventKind
	for _, ev := range e.list {
		kinds = append(kinds, ev.Kind)
	}
	return kinds
}

func (e *events) count(kind bulwark.EventKind) int {
	n := 0
	for _, k := range e.kinds() {
		if k == kind {
			n++
		}
	}
	return n
}

// counted returns fn wrapped to count its runs.
func counted[T any](runs *atomic.Int32, fn bulwark.Func[T]) bulwark.Func[T] {
	return func(ctx context.Context) (T, error) {
		runs.Add(1)
		return fn(ctx)
	}
}

func value[T any](v T) bulwark.Func[T] {
	return func(context.Context) (T, error) { return v, nil }
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		cfg  idempotency.Config
		want string
	}{
		{idempotency.Config{TTL: -time.Second}, "Config.TTL"},
		{idempotency.Config{Lease: -time.Second}, "Config.Lease"},
		{idempotency.Config{DuplicatePolicy: 7}, "Config.DuplicatePolicy"},
	}
	for _, tt := range tests {
		m, err := idempotency.New(nil, tt.cfg)
		require.Error(t, err)
		assert.Nil(t, m)
		assert.Contains(t, err.Error(), tt.want)
	}
}

func TestNewDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemory(t, 0)
		m := newManager(t, store, idempotency.Config{})
		ctx := context.Background()
		var leaseEnd time.Time
		_, err := idempotency.Do(ctx, m, "k", func(ctx context.Context) (int, error) {
			rec, _, _ := store.Get(ctx, "k")
			leaseEnd = rec.Expires
			return 1, nil
		})
		require.NoError(t, err)
		rec, found, _ := store.Get(ctx, "k")
		require.True(t, found)
		assert.Equal(t, time.Now().Add(idempotency.DefaultTTL), rec.Expires, "TTL defaults to 24h")
		assert.Equal(t, time.Now().Add(idempotency.DefaultLease), leaseEnd, "Lease defaults to 1m")

		// A nil store means a fresh memory store.
		m2 := newManager(t, nil, idempotency.Config{})
		var runs atomic.Int32
		for range 2 {
			v, err := idempotency.Do(ctx, m2, "k", counted(&runs, value(5)))
			require.NoError(t, err)
			assert.Equal(t, 5, v)
		}
		assert.Equal(t, int32(1), runs.Load())
	})
}

func TestExecuteRunsOnceThenReplays(t *testing.T) {
	var ev events
	m := newManager(t, nil, idempotency.Config{OnEvent: ev.listen})
	var runs atomic.Int32
	fn := counted(&runs, value("receipt-1"))

	ctx, report := bulwark.WithReport(context.Background())
	first := idempotency.Execute(ctx, m, "charge-1", "", fn)
	require.NoError(t, first.Err)
	assert.Equal(t, "receipt-1", first.Value)
	assert.False(t, first.Replayed)
	assert.False(t, report.Replayed())

	ctx, report = bulwark.WithReport(context.Background())
	second := idempotency.Execute(ctx, m, "charge-1", "", fn)
	require.NoError(t, second.Err)
	assert.Equal(t, "receipt-1", second.Value)
	assert.True(t, second.Replayed)
	assert.True(t, report.Replayed(), "the Report records the replay")

	assert.Equal(t, int32(1), runs.Load())
	require.Equal(t, []bulwark.EventKind{bulwark.IdempotencyReplayed}, ev.kinds())
	assert.Equal(t, "charge-1", ev.list[0].Key)
	assert.False(t, ev.list[0].Time.IsZero())
}

func TestConcurrentIdenticalCallsRunOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, nil, idempotency.Config{})
		var runs atomic.Int32
		release := make(chan struct{})
		fn := counted(&runs, func(ctx context.Context) (string, error) {
			<-release
			return "the one result", nil
		})
		const callers = 1000
		results := make([]idempotency.Result[string], callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { results[i] = idempotency.Execute(context.Background(), m, "same", "", fn) })
		}
		synctest.Wait() // every caller is blocked: one in fn, the rest waiting
		close(release)
		wg.Wait()

		assert.Equal(t, int32(1), runs.Load(), "fn runs exactly once")
		replays := 0
		for _, r := range results {
			require.NoError(t, r.Err)
			require.Equal(t, "the one result", r.Value)
			if r.Replayed {
				replays++
			}
		}
		assert.Equal(t, callers-1, replays, "all but the executing caller got a replay")
	})
}

func TestDuplicateFromAnotherProcessGetsErrInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemory(t, 0)
		var ev events
		holder := newManager(t, store, idempotency.Config{})
		other := newManager(t, store, idempotency.Config{OnEvent: ev.listen}) // another process
		var runs atomic.Int32
		release := make(chan struct{})
		fn := counted(&runs, func(ctx context.Context) (int, error) {
			<-release
			return 42, nil
		})
		done := make(chan idempotency.Result[int])
		go func() { done <- idempotency.Execute(context.Background(), holder, "k", "", fn) }()
		synctest.Wait()

		for range 3 {
			r := idempotency.Execute(context.Background(), other, "k", "", fn)
			require.ErrorIs(t, r.Err, idempotency.ErrInProgress)
			assert.NotErrorIs(t, r.Err, bulwark.ErrRejected, "ErrInProgress is retryable, not a rejection")
			assert.False(t, r.Replayed)
			time.Sleep(20 * time.Second)
		}
		assert.Equal(t, int32(1), runs.Load(), "never a second execution while the lease holds")
		assert.Equal(t, 3, ev.count(bulwark.IdempotencyConflict))

		close(release)
		require.NoError(t, (<-done).Err)
		r := idempotency.Execute(context.Background(), other, "k", "", fn)
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed)
		assert.Equal(t, 42, r.Value)
		assert.Equal(t, int32(1), runs.Load())
	})
}

func TestDeadHolderLeaseExpiresAndOneCallerReclaims(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemory(t, 0)
		// A process claimed the key, then died without completing.
		_, claimed, err := store.Claim(context.Background(), "k", "dead-process/1", "", idempotency.DefaultLease)
		require.NoError(t, err)
		require.True(t, claimed)

		a := newManager(t, store, idempotency.Config{})
		b := newManager(t, store, idempotency.Config{})
		var runs atomic.Int32
		fn := counted(&runs, func(ctx context.Context) (string, error) {
			time.Sleep(time.Second)
			return "done", nil
		})
		for _, m := range []*idempotency.Manager{a, b} {
			_, err := idempotency.Do(context.Background(), m, "k", fn)
			require.ErrorIs(t, err, idempotency.ErrInProgress)
		}
		require.Zero(t, runs.Load())

		time.Sleep(idempotency.DefaultLease)
		var wg sync.WaitGroup
		results := make([]idempotency.Result[string], 2)
		for i, m := range []*idempotency.Manager{a, b} {
			wg.Go(func() { results[i] = idempotency.Execute(context.Background(), m, "k", "", fn) })
		}
		wg.Wait()
		assert.Equal(t, int32(1), runs.Load(), "exactly one caller reclaims the key")
		executed := 0
		for _, r := range results {
			if r.Err == nil && !r.Replayed {
				executed++
				continue
			}
			assert.ErrorIs(t, r.Err, idempotency.ErrInProgress, "the other caller meets the new claim")
		}
		assert.Equal(t, 1, executed)
	})
}

// extendCounter counts a store's Extend calls.
type extendCounter struct {
	idempotency.Store
	extends atomic.Int32
}

func (s *extendCounter) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	s.extends.Add(1)
	return s.Store.Extend(ctx, key, owner, lease)
}

func TestLeaseIsExtendedWhileFnRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &extendCounter{Store: newMemory(t, 0)}
		m := newManager(t, store, idempotency.Config{Lease: time.Minute})
		other := newManager(t, store, idempotency.Config{Lease: time.Minute})
		var runs atomic.Int32
		slow := counted(&runs, func(ctx context.Context) (int, error) {
			time.Sleep(10 * time.Minute) // ten leases
			return 7, nil
		})
		done := make(chan error)
		go func() {
			_, err := idempotency.Do(context.Background(), m, "slow", slow)
			done <- err
		}()
		for range 9 {
			time.Sleep(time.Minute)
			_, err := idempotency.Do(context.Background(), other, "slow", slow)
			require.ErrorIs(t, err, idempotency.ErrInProgress, "the slow call keeps its claim")
		}
		require.NoError(t, <-done)
		assert.Equal(t, int32(1), runs.Load())
		synctest.Wait() // a renewal firing at the very instant the call ended has run
		extends := store.extends.Load()
		assert.GreaterOrEqual(t, extends, int32(29), "extended every Lease/3")

		// Renewal stopped with the call: no extension afterwards.
		time.Sleep(time.Hour)
		assert.Equal(t, extends, store.extends.Load())
	})
}

func TestLeaseLostWhileFnRunsIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		store.failOn("extend", fmt.Errorf("%w: extend", idempotency.ErrLeaseLost))
		m := newManager(t, store, idempotency.Config{Lease: time.Minute})
		v, err := idempotency.Do(context.Background(), m, "k", func(ctx context.Context) (int, error) {
			time.Sleep(3 * time.Minute) // the lease runs out: nobody extends it
			return 9, nil
		})
		assert.Equal(t, 9, v, "the caller still gets the value")
		assert.ErrorIs(t, err, idempotency.ErrNotRecorded)
		assert.ErrorIs(t, err, idempotency.ErrLeaseLost)
		assert.Equal(t, 1, store.count("extend"), "renewal stops once the lease is lost")
	})
}

func TestLeaderPanicReleasesClaimAndFreesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, nil, idempotency.Config{})
		release := make(chan struct{})
		panicky := func(ctx context.Context) (int, error) {
			<-release
			panic("boom")
		}
		leaderPanic := make(chan any)
		go func() {
			defer func() { leaderPanic <- recover() }()
			_, _ = idempotency.Do(context.Background(), m, "k", panicky)
		}()
		synctest.Wait()
		waiters := make([]chan error, 3)
		for i := range waiters {
			waiters[i] = make(chan error, 1)
			go func() {
				_, err := idempotency.Do(context.Background(), m, "k", panicky)
				waiters[i] <- err
			}()
		}
		synctest.Wait()
		close(release)
		assert.Equal(t, "boom", <-leaderPanic, "the panic reaches the leader's caller")
		for _, w := range waiters {
			assert.ErrorIs(t, <-w, idempotency.ErrPanicked, "waiters get an error, not a hang")
		}
		// The claim was released: the next call executes.
		v, err := idempotency.Do(context.Background(), m, "k", value(3))
		require.NoError(t, err)
		assert.Equal(t, 3, v)
	})
}

func TestCancelledWaiterLeavesLeaderAndOthersAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, nil, idempotency.Config{})
		var runs atomic.Int32
		release := make(chan struct{})
		fn := counted(&runs, func(ctx context.Context) (string, error) {
			select {
			case <-release:
				return "v", nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		})
		leader := make(chan idempotency.Result[string], 1)
		go func() { leader <- idempotency.Execute(context.Background(), m, "k", "", fn) }()
		synctest.Wait()

		cause := errors.New("client went away")
		cctx, cancel := context.WithCancelCause(context.Background())
		impatient := make(chan error, 1)
		go func() {
			_, err := idempotency.Do(cctx, m, "k", fn)
			impatient <- err
		}()
		patient := make(chan idempotency.Result[string], 1)
		go func() { patient <- idempotency.Execute(context.Background(), m, "k", "", fn) }()
		synctest.Wait()

		cancel(cause)
		assert.ErrorIs(t, <-impatient, cause, "the waiter returns its context's cause")
		synctest.Wait()
		select {
		case <-leader:
			t.Fatal("a waiter's cancellation ended the leader")
		default:
		}
		close(release)
		l, p := <-leader, <-patient
		require.NoError(t, l.Err)
		require.NoError(t, p.Err)
		assert.Equal(t, "v", p.Value)
		assert.True(t, p.Replayed)
		assert.Equal(t, int32(1), runs.Load())
	})
}

func TestResultRecordedAfterLeaderContextCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The store fails any operation whose context is done, as a
		// network store does: only context.WithoutCancel gets the write in.
		store := newJSONStore(nil)
		m := newManager(t, store, idempotency.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		v, err := idempotency.Do(ctx, m, "k", func(context.Context) (int, error) {
			cancel() // the caller gives up just as fn succeeds
			return 11, nil
		})
		require.NoError(t, err)
		assert.Equal(t, 11, v)

		var runs atomic.Int32
		r := idempotency.Execute(context.Background(), m, "k", "", counted(&runs, value(0)))
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed, "the result was stored")
		assert.Equal(t, 11, r.Value)
		assert.Zero(t, runs.Load())
	})
}

func TestWaitersStartOverWhenLeaderContextEndsItsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, nil, idempotency.Config{})
		var runs atomic.Int32
		fn := counted(&runs, func(ctx context.Context) (string, error) {
			select {
			case <-time.After(time.Minute):
				return "finished", nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		})
		lctx, cancel := context.WithCancel(context.Background())
		leader := make(chan error, 1)
		go func() {
			_, err := idempotency.Do(lctx, m, "k", fn)
			leader <- err
		}()
		synctest.Wait()
		waiter := make(chan idempotency.Result[string], 1)
		go func() { waiter <- idempotency.Execute(context.Background(), m, "k", "", fn) }()
		synctest.Wait()

		cancel()
		assert.ErrorIs(t, <-leader, context.Canceled)
		r := <-waiter
		require.NoError(t, r.Err, "the waiter does not inherit the leader's cancellation")
		assert.Equal(t, "finished", r.Value)
		assert.False(t, r.Replayed, "the waiter executed fn itself")
		assert.Equal(t, int32(2), runs.Load())
	})
}

func TestFailedCallReleasesClaim(t *testing.T) {
	m := newManager(t, nil, idempotency.Config{})
	var runs atomic.Int32
	errTransient := errors.New("503")
	fn := counted(&runs, func(ctx context.Context) (int, error) {
		if runs.Load() == 1 {
			return 0, errTransient
		}
		return 8, nil
	})
	_, err := idempotency.Do(context.Background(), m, "k", fn)
	require.ErrorIs(t, err, errTransient)
	v, err := idempotency.Do(context.Background(), m, "k", fn)
	require.NoError(t, err, "the next call executes again")
	assert.Equal(t, 8, v)
	assert.Equal(t, int32(2), runs.Load())
}

func TestCacheErrorsReplaysPermanentErrors(t *testing.T) {
	errDeclined := errors.New("card declined")
	errTimeout := errors.New("timeout")
	for _, tt := range []struct {
		name  string
		store func(t *testing.T) idempotency.Store
	}{
		{"memory", func(t *testing.T) idempotency.Store { return newMemory(t, 0) }},
		{"serializing", func(t *testing.T) idempotency.Store { return newJSONStore(nil) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, tt.store(t), idempotency.Config{CacheErrors: true})
			var runs atomic.Int32
			declined := counted(&runs, func(ctx context.Context) (int, error) {
				return 0, idempotency.Permanent(errDeclined)
			})
			_, err := idempotency.Do(context.Background(), m, "charge", declined)
			require.ErrorIs(t, err, errDeclined)
			r := idempotency.Execute(context.Background(), m, "charge", "", declined)
			require.Error(t, r.Err)
			assert.True(t, r.Replayed)
			assert.Equal(t, "card declined", r.Err.Error(), "the stored error keeps its message")
			if tt.name == "memory" {
				assert.ErrorIs(t, r.Err, errDeclined, "the memory store keeps the error value")
			}
			assert.Equal(t, int32(1), runs.Load())

			// An error not marked permanent is not stored.
			timeout := counted(&runs, func(ctx context.Context) (int, error) { return 0, errTimeout })
			for range 2 {
				_, err := idempotency.Do(context.Background(), m, "other", timeout)
				require.ErrorIs(t, err, errTimeout)
			}
			assert.Equal(t, int32(3), runs.Load())
		})
	}
}

func TestCacheErrorsWithIsPermanent(t *testing.T) {
	errNotFound := errors.New("404")
	m := newManager(t, nil, idempotency.Config{
		CacheErrors: true,
		IsPermanent: func(err error) bool { return errors.Is(err, errNotFound) },
	})
	var runs atomic.Int32
	fn := counted(&runs, func(ctx context.Context) (int, error) { return 0, errNotFound })
	for range 3 {
		_, err := idempotency.Do(context.Background(), m, "k", fn)
		require.ErrorIs(t, err, errNotFound)
	}
	assert.Equal(t, int32(1), runs.Load())

	// Without CacheErrors, even a marked error releases the claim.
	plain := newManager(t, nil, idempotency.Config{})
	marked := counted(&runs, func(ctx context.Context) (int, error) { return 0, idempotency.Permanent(errNotFound) })
	for range 2 {
		_, _ = idempotency.Do(context.Background(), plain, "k", marked)
	}
	assert.Equal(t, int32(3), runs.Load())
	assert.Nil(t, idempotency.Permanent(nil))
}

func TestStoreFailureAtClaimFailsClosed(t *testing.T) {
	store := newJSONStore(nil)
	store.failOn("claim", errors.New("connection refused"))
	m := newManager(t, store, idempotency.Config{})
	var runs atomic.Int32
	_, err := idempotency.Do(context.Background(), m, "k", counted(&runs, value(1)))
	require.ErrorIs(t, err, idempotency.ErrStore)
	assert.Contains(t, err.Error(), "store failed")
	assert.Contains(t, err.Error(), "connection refused")
	assert.Zero(t, runs.Load(), "fn does not run")
}

func TestStoreFailureAfterSuccessIsNeverSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		store.failOn("complete", errors.New("connection reset"))
		m := newManager(t, store, idempotency.Config{Lease: time.Minute})
		other := newManager(t, store, idempotency.Config{Lease: time.Minute}) // another process
		var runs atomic.Int32
		start := time.Now()
		v, err := idempotency.Do(context.Background(), m, "k", counted(&runs, value("paid")))
		assert.Equal(t, "paid", v, "the caller gets the value")
		require.ErrorIs(t, err, idempotency.ErrNotRecorded)
		assert.Contains(t, err.Error(), "not recorded")
		assert.Contains(t, err.Error(), "connection reset")
		assert.Contains(t, err.Error(), "until the claim's lease ran out")
		assert.Equal(t, time.Minute, time.Since(start), "the write is retried for as long as the lease holds, no longer")
		assert.Greater(t, store.count("complete"), 10, "retried with backoff")
		assert.Equal(t, int32(1), runs.Load())

		// The claim lapses within a lease (renewal stopped): until then a
		// duplicate elsewhere gets ErrInProgress; then it runs again (as
		// the first caller was warned by ErrNotRecorded).
		store.failOn("complete", nil)
		r := idempotency.Execute(context.Background(), other, "k", "", counted(&runs, value("again")))
		require.ErrorIs(t, r.Err, idempotency.ErrInProgress)
		time.Sleep(time.Minute)
		r = idempotency.Execute(context.Background(), other, "k", "", counted(&runs, value("again")))
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed)
	})
}

func TestReleaseFailureIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		store.failOn("release", errors.New("timeout"))
		m := newManager(t, store, idempotency.Config{Lease: time.Minute})
		errFn := errors.New("fn failed")
		start := time.Now()
		_, err := idempotency.Do(context.Background(), m, "k", func(context.Context) (int, error) { return 0, errFn })
		assert.ErrorIs(t, err, errFn)
		assert.ErrorIs(t, err, idempotency.ErrStore)
		assert.Contains(t, err.Error(), "release")
		assert.Equal(t, time.Minute, time.Since(start), "the release is retried while the lease holds")
		assert.Greater(t, store.count("release"), 10)
	})
}

func TestTTLExpiryExecutesAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, nil, idempotency.Config{TTL: time.Hour})
		var runs atomic.Int32
		fn := counted(&runs, value(1))
		_, _ = idempotency.Do(context.Background(), m, "k", fn)
		time.Sleep(59 * time.Minute)
		r := idempotency.Execute(context.Background(), m, "k", "", fn)
		assert.True(t, r.Replayed)
		time.Sleep(2 * time.Minute)
		r = idempotency.Execute(context.Background(), m, "k", "", fn)
		assert.False(t, r.Replayed, "expired: executes again")
		assert.Equal(t, int32(2), runs.Load())
	})
}

type receipt struct {
	ID     string   `json:"id"`
	Amount int      `json:"amount"`
	Lines  []string `json:"lines"`
}

// replayTwice runs v through a Manager twice and returns the replay.
func replayTwice[T any](t *testing.T, m *idempotency.Manager, key string, v T) idempotency.Result[T] {
	t.Helper()
	var runs atomic.Int32
	first := idempotency.Execute(context.Background(), m, key, "", counted(&runs, value(v)))
	require.NoError(t, first.Err)
	second := idempotency.Execute(context.Background(), m, key, "", counted(&runs, value(v)))
	require.NoError(t, second.Err)
	require.True(t, second.Replayed, "replayed, distinct from no record")
	require.Equal(t, int32(1), runs.Load())
	return second
}

func TestZeroAndNilResultsReplay(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(t *testing.T) idempotency.Store
	}{
		{"memory", func(t *testing.T) idempotency.Store { return newMemory(t, 0) }},
		{"serializing", func(t *testing.T) idempotency.Store { return newJSONStore(nil) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, tt.store(t), idempotency.Config{})
			assert.Equal(t, 0, replayTwice(t, m, "zero-int", 0).Value)
			assert.Equal(t, "", replayTwice(t, m, "empty-string", "").Value)
			assert.False(t, replayTwice(t, m, "false", false).Value)
			assert.Nil(t, replayTwice(t, m, "nil-pointer", (*receipt)(nil)).Value)
			assert.Nil(t, replayTwice(t, m, "nil-slice", []string(nil)).Value)
			assert.Nil(t, replayTwice(t, m, "nil-any", any(nil)).Value)
			assert.Equal(t, receipt{}, replayTwice(t, m, "zero-struct", receipt{}).Value)
			full := receipt{ID: "r1", Amount: 42, Lines: []string{"a"}}
			assert.Equal(t, full, replayTwice(t, m, "struct", full).Value)
			assert.Equal(t, &full, replayTwice(t, m, "pointer", &full).Value)
		})
	}
}

func TestReplayAsAnotherTypeIsAnError(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(t *testing.T) idempotency.Store
	}{
		{"memory", func(t *testing.T) idempotency.Store { return newMemory(t, 0) }},
		{"serializing", func(t *testing.T) idempotency.Store { return newJSONStore(nil) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, tt.store(t), idempotency.Config{})
			_, err := idempotency.Do(context.Background(), m, "k", value(42))
			require.NoError(t, err)
			var runs atomic.Int32
			_, err = idempotency.Do(context.Background(), m, "k", counted(&runs, value("text")))
			require.ErrorIs(t, err, idempotency.ErrDecode)
			assert.Contains(t, err.Error(), "string")
			assert.Zero(t, runs.Load())
		})
	}
}

func TestKeyReuseWithAnotherPayload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		m := newManager(t, nil, idempotency.Config{OnEvent: ev.listen})
		var runs atomic.Int32
		release := make(chan struct{})
		fn := counted(&runs, func(ctx context.Context) (int, error) {
			<-release
			return 1, nil
		})
		fpA, err := idempotency.Key(map[string]int{"amount": 100})
		require.NoError(t, err)
		fpB, err := idempotency.Key(map[string]int{"amount": 999})
		require.NoError(t, err)

		done := make(chan error, 1)
		go func() {
			_, err := idempotency.DoPayload(context.Background(), m, "k", fpA, fn)
			done <- err
		}()
		synctest.Wait()
		_, err = idempotency.DoPayload(context.Background(), m, "k", fpB, fn)
		require.ErrorIs(t, err, idempotency.ErrKeyReuse, "in flight")
		close(release)
		require.NoError(t, <-done)

		_, err = idempotency.DoPayload(context.Background(), m, "k", fpB, fn)
		require.ErrorIs(t, err, idempotency.ErrKeyReuse, "completed")
		_, err = idempotency.Do(context.Background(), m, "k", fn)
		require.ErrorIs(t, err, idempotency.ErrKeyReuse, "no fingerprint is not the same payload")
		assert.Equal(t, int32(1), runs.Load(), "nothing ran")
		assert.Equal(t, 3, ev.count(bulwark.IdempotencyConflict))

		v, err := idempotency.DoPayload(context.Background(), m, "k", fpA, fn)
		require.NoError(t, err, "the same payload replays")
		assert.Equal(t, 1, v)
	})
}

func TestDuplicateRejectPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		m := newManager(t, nil, idempotency.Config{DuplicatePolicy: idempotency.DuplicateReject, OnEvent: ev.listen})
		var runs atomic.Int32
		release := make(chan struct{})
		fn := counted(&runs, func(ctx context.Context) (int, error) {
			<-release
			return 5, nil
		})
		done := make(chan error, 1)
		go func() {
			_, err := idempotency.Do(context.Background(), m, "k", fn)
			done <- err
		}()
		synctest.Wait()
		_, err := idempotency.Do(context.Background(), m, "k", fn)
		require.ErrorIs(t, err, idempotency.ErrInProgress, "rejected at once in the same process")
		assert.Equal(t, 1, ev.count(bulwark.IdempotencyConflict))
		close(release)
		require.NoError(t, <-done)
		r := idempotency.Execute(context.Background(), m, "k", "", fn)
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed)
		assert.Equal(t, int32(1), runs.Load())
		assert.Equal(t, "reject", idempotency.DuplicateReject.String())
		assert.Equal(t, "wait", idempotency.DuplicateWait.String())
	})
}

func TestInvalidCallsAreErrors(t *testing.T) {
	m := newManager(t, nil, idempotency.Config{})
	_, err := idempotency.Do(context.Background(), m, "", value(1))
	assert.ErrorContains(t, err, "empty key")
	_, err = idempotency.Do(context.Background(), nil, "k", value(1))
	assert.ErrorContains(t, err, "nil Manager")
	_, err = idempotency.Do[int](context.Background(), m, "k", nil)
	assert.ErrorContains(t, err, "nil fn")
}

// TestInvalidInputWrapsErrInvalid: every entry point given a nil Manager,
// a nil function or an empty key returns an error wrapping ErrInvalid,
// runs nothing and claims nothing.
func TestInvalidInputWrapsErrInvalid(t *testing.T) {
	store := newJSONStore(nil)
	m := newManager(t, store, idempotency.Config{})
	ctx := idempotency.WithKey(context.Background(), "k")
	var runs atomic.Int32
	fn := counted(&runs, value(1))
	errOf := func(_ int, err error) error { return err }
	calls := map[string]error{
		"Do nil Manager":                 errOf(idempotency.Do(ctx, nil, "k", fn)),
		"Do nil fn":                      errOf(idempotency.Do[int](ctx, m, "k", nil)),
		"Do empty key":                   errOf(idempotency.Do(ctx, m, "", fn)),
		"DoPayload nil Manager":          errOf(idempotency.DoPayload(ctx, nil, "k", "fp", fn)),
		"DoPayload nil fn":               errOf(idempotency.DoPayload[int](ctx, m, "k", "fp", nil)),
		"DoPayload empty key":            errOf(idempotency.DoPayload(ctx, m, "", "fp", fn)),
		"Execute nil Manager":            idempotency.Execute(ctx, nil, "k", "", fn).Err,
		"Execute nil fn":                 idempotency.Execute[int](ctx, m, "k", "", nil).Err,
		"Execute empty key":              idempotency.Execute(ctx, m, "", "", fn).Err,
		"Middleware nil Manager":         errOf(idempotency.Middleware[int](nil, nil)(fn)(ctx)),
		"Middleware nil next":            errOf(idempotency.Middleware[int](m, nil)(nil)(ctx)),
		"Middleware nil Manager, no key": errOf(idempotency.Middleware[int](nil, nil)(fn)(context.Background())),
		"Middleware empty key":           errOf(idempotency.Middleware[int](m, nil)(fn)(idempotency.WithKey(context.Background(), ""))),
		"Middleware nil context":         errOf(idempotency.Middleware[int](m, nil)(fn)(nilContext())),
		"Execute nil context":            idempotency.Execute(nilContext(), m, "k", "", fn).Err,
		"Forget nil context":             func() error { _, err := m.Forget(nilContext(), "k"); return err }(),
		"Forget nil Manager":             func() error { _, err := (*idempotency.Manager)(nil).Forget(ctx, "k"); return err }(),
		"Forget empty key":               func() error { _, err := m.Forget(ctx, ""); return err }(),
		"New nil *MemoryStore": func() error {
			_, err := idempotency.New((*idempotency.MemoryStore)(nil), idempotency.Config{})
			return err
		}(),
		"New negative TTL":   func() error { _, err := idempotency.New(nil, idempotency.Config{TTL: -1}); return err }(),
		"New negative Lease": func() error { _, err := idempotency.New(nil, idempotency.Config{Lease: -1}); return err }(),
		"New unknown DuplicatePolicy": func() error {
			_, err := idempotency.New(nil, idempotency.Config{DuplicatePolicy: 9})
			return err
		}(),
	}
	for name, err := range calls {
		assert.ErrorIs(t, err, idempotency.ErrInvalid, name)
	}
	assert.Zero(t, runs.Load(), "nothing ran")
	assert.Zero(t, store.count("claim")+store.count("forget"), "nothing reached the store")
	assert.Equal(t, "idempotency: invalid input", idempotency.ErrInvalid.Error())
}

func TestListenerMayCallBackIntoManager(t *testing.T) {
	var m *idempotency.Manager
	var nested atomic.Int32
	m = newManager(t, nil, idempotency.Config{OnEvent: func(ev bulwark.Event) {
		if ev.Key == "outer" {
			// Re-entering the Manager from a listener must not deadlock.
			_, _ = idempotency.Do(context.Background(), m, "inner", value(1))
			nested.Add(1)
		}
	}})
	for range 2 {
		_, err := idempotency.Do(context.Background(), m, "outer", value(1))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), nested.Load())
}

func TestReplayAllocatesNothing(t *testing.T) {
	m := newManager(t, nil, idempotency.Config{})
	ctx := context.Background()
	fn := value("v")
	_, err := idempotency.Do(ctx, m, "k", fn)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() {
		if r := idempotency.Execute(ctx, m, "k", "", fn); !r.Replayed {
			t.Fatal("not replayed")
		}
	})
	assert.Zero(t, allocs)
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "IN_PROGRESS", idempotency.InProgress.String())
	assert.Equal(t, "COMPLETED", idempotency.Completed.String())
	assert.Equal(t, "State(9)", idempotency.State(9).String())
}

// panickyClaim is a store whose Claim blocks until released, then panics.
type panickyClaim struct {
	idempotency.Store
	release chan struct{}
}

func (s *panickyClaim) Claim(ctx context.Context, key, owner, fp string, lease time.Duration) (idempotency.Record, bool, error) {
	<-s.release
	panic("store bug")
}

func TestStorePanicDoesNotStrandWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &panickyClaim{Store: newMemory(t, 0), release: make(chan struct{})}
		m := newManager(t, store, idempotency.Config{})
		leaderPanic := make(chan any, 1)
		go func() {
			defer func() { leaderPanic <- recover() }()
			_, _ = idempotency.Do(context.Background(), m, "k", value(1))
		}()
		synctest.Wait()
		waiter := make(chan error, 1)
		go func() {
			_, err := idempotency.Do(context.Background(), m, "k", value(1))
			waiter <- err
		}()
		synctest.Wait()
		close(store.release)
		assert.Equal(t, "store bug", <-leaderPanic)
		assert.ErrorIs(t, <-waiter, idempotency.ErrPanicked)
	})
}

func TestForgetLetsTheOperationRunAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := newManager(t, nil, idempotency.Config{})
		var runs atomic.Int32
		fn := counted(&runs, value("page-1"))
		_, err := idempotency.Do(ctx, m, "k", fn)
		require.NoError(t, err)

		forgotten, err := m.Forget(ctx, "k")
		require.NoError(t, err)
		assert.True(t, forgotten)
		r := idempotency.Execute(ctx, m, "k", "", fn)
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed, "forgotten: executes again")
		assert.Equal(t, int32(2), runs.Load())

		forgotten, err = m.Forget(ctx, "never-used")
		require.NoError(t, err)
		assert.False(t, forgotten)

		var nilManager *idempotency.Manager
		_, err = nilManager.Forget(ctx, "k")
		assert.Error(t, err)
	})
}

func TestForgetStoreFailureIsReported(t *testing.T) {
	store := newJSONStore(time.Now)
	m := newManager(t, store, idempotency.Config{})
	boom := errors.New("connection refused")
	store.failOn("forget", boom)
	forgotten, err := m.Forget(context.Background(), "k")
	assert.False(t, forgotten)
	assert.ErrorIs(t, err, idempotency.ErrStore)
	assert.ErrorIs(t, err, boom)
}

// nilContext returns a nil context, as a careless caller passes.
func nilContext() context.Context { return nil }
