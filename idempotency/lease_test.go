package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
)

// batchStore is a MemoryStore (so a BatchExtender) whose ExtendMany takes
// rtt, as one round trip to a server would, and can be made to fail.
type batchStore struct {
	*idempotency.MemoryStore
	rtt time.Duration

	mu     sync.Mutex
	rounds []int                                                           // claims per ExtendMany call
	hook   func(round int, claims []idempotency.ClaimRef) ([]error, error) // nil: extend
}

func (s *batchStore) ExtendMany(ctx context.Context, claims []idempotency.ClaimRef, lease time.Duration) ([]error, error) {
	s.mu.Lock()
	s.rounds = append(s.rounds, len(claims))
	round, hook := len(s.rounds), s.hook
	s.mu.Unlock()
	time.Sleep(s.rtt)
	if hook != nil {
		if errs, err := hook(round, claims); errs != nil || err != nil {
			return errs, err
		}
	}
	return s.MemoryStore.ExtendMany(ctx, claims, lease)
}

func (s *batchStore) roundSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.rounds...)
}

// slowExtends hides the MemoryStore's ExtendMany: the Manager extends its
// claims one Extend at a time, each taking rtt.
type slowExtends struct {
	idempotency.Store
	rtt            time.Duration
	inFlight, peak atomic.Int32
	extends        atomic.Int32
}

func (s *slowExtends) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	s.extends.Add(1)
	time.Sleep(s.rtt)
	return s.Store.Extend(ctx, key, owner, lease)
}

// runMany starts n calls on m, keys k0..k(n-1), each running for d, and
// returns a function that waits for their results.
func runMany(m *idempotency.Manager, n int, d time.Duration) func() []idempotency.Result[string] {
	results := make([]idempotency.Result[string], n)
	var wg sync.WaitGroup
	for i := range n {
		key := "k" + strconv.Itoa(i)
		wg.Go(func() {
			results[i] = idempotency.Execute(context.Background(), m, key, "", func(context.Context) (string, error) {
				time.Sleep(d)
				return "value of " + key, nil
			})
		})
	}
	return func() []idempotency.Result[string] {
		wg.Wait()
		return results
	}
}

// wantAllHeld checks that another Manager gets ErrInProgress for each of
// the n keys, and runs none.
func wantAllHeld(t *testing.T, other *idempotency.Manager, n int) {
	t.Helper()
	held := 0
	for i := range n {
		r := idempotency.Execute(context.Background(), other, "k"+strconv.Itoa(i), "", value("should not run"))
		if errors.Is(r.Err, idempotency.ErrInProgress) {
			held++
		}
	}
	assert.Equal(t, n, held, "every claim still held by its running call")
}

// wantAllRecorded checks that every call got its own value, recorded.
func wantAllRecorded(t *testing.T, results []idempotency.Result[string]) {
	t.Helper()
	lost := 0
	for i, r := range results {
		if r.Err != nil || r.Replayed || r.Value != "value of k"+strconv.Itoa(i) {
			lost++
		}
	}
	assert.Zero(t, lost, "calls that lost their claim (ErrNotRecorded) of %d", len(results))
}

// TestRenewalBatchedForTenThousandClaims: 10,000 calls of 2s with a 1s
// lease, over a store whose ExtendMany takes 5ms: each renewal round is
// one ExtendMany of every running claim, every claim is held throughout
// (another Manager gets ErrInProgress after 1.5s), and every result is
// recorded. Extending the claims one after another, as renewal did
// before, takes 10,000 round trips a round, and every claim expired.
func TestRenewalBatchedForTenThousandClaims(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 10_000
		store := &batchStore{MemoryStore: newMemory(t, 2*n), rtt: 5 * time.Millisecond}
		cfg := idempotency.Config{Lease: time.Second}
		m := newManager(t, store, cfg)
		other := newManager(t, store, cfg)
		wait := runMany(m, n, 2*time.Second)
		time.Sleep(1500 * time.Millisecond)
		wantAllHeld(t, other, n)
		wantAllRecorded(t, wait())
		time.Sleep(time.Second) // the last round ends
		rounds := store.roundSizes()
		assert.GreaterOrEqual(t, len(rounds), 6, "a round every Lease/3")
		assert.LessOrEqual(t, len(rounds), 8)
		assert.Equal(t, n, rounds[0], "one ExtendMany for all the running claims")
	})
}

// TestRenewalWithoutBatchKeepsUp: over a store without ExtendMany whose
// Extend takes 1ms, 2,000 calls of 3s with a 1s lease keep their claims:
// the extensions of a round run concurrently (at most 64 at a time).
// One after another, a round took 2s, twice the lease.
func TestRenewalWithoutBatchKeepsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 2000
		store := &slowExtends{Store: newMemory(t, 2*n), rtt: time.Millisecond}
		cfg := idempotency.Config{Lease: time.Second}
		m := newManager(t, store, cfg)
		other := newManager(t, store, cfg)
		wait := runMany(m, n, 3*time.Second)
		time.Sleep(2500 * time.Millisecond)
		wantAllHeld(t, other, n)
		wantAllRecorded(t, wait())
		time.Sleep(time.Second) // the last round ends
		assert.Equal(t, int32(64), store.peak.Load(), "at most 64 concurrent extensions")
		assert.GreaterOrEqual(t, store.extends.Load(), int32(8*n), "every claim extended every Lease/3")
	})
}

// TestRenewalOutcomesArePerClaim: a batch that reports one claim's lease
// lost stops renewing that claim only: its call reports ErrNotRecorded
// with ErrLeaseLost, the others record their results.
func TestRenewalOutcomesArePerClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &batchStore{MemoryStore: newMemory(t, 0)}
		store.hook = func(_ int, claims []idempotency.ClaimRef) ([]error, error) {
			for _, c := range claims {
				if c.Key == "k1" {
					errs := make([]error, len(claims))
					for i, c := range claims {
						if c.Key == "k1" {
							errs[i] = fmt.Errorf("%w: taken", idempotency.ErrLeaseLost)
						} else {
							errs[i] = store.MemoryStore.Extend(context.Background(), c.Key, c.Owner, time.Minute)
						}
					}
					return errs, nil
				}
			}
			return nil, nil
		}
		m := newManager(t, store, idempotency.Config{Lease: time.Minute})
		results := runMany(m, 3, 3*time.Minute)()
		for i, r := range results {
			if i == 1 {
				assert.ErrorIs(t, r.Err, idempotency.ErrNotRecorded)
				assert.ErrorIs(t, r.Err, idempotency.ErrLeaseLost)
				continue
			}
			assert.NoError(t, r.Err, "call %d", i)
		}
		time.Sleep(time.Minute) // the last round ends
	})
}

// TestRenewalSurvivesOneFailedRound: a round that fails as a whole (an
// error, a wrong number of outcomes, or a store that hangs past the
// round's deadline) costs no claim: the next round extends them.
func TestRenewalSurvivesOneFailedRound(t *testing.T) {
	for name, fail := range map[string]func(ctx context.Context, claims []idempotency.ClaimRef) ([]error, error){
		"error": func(context.Context, []idempotency.ClaimRef) ([]error, error) {
			return nil, errors.New("connection reset")
		},
		"wrong outcomes": func(context.Context, []idempotency.ClaimRef) ([]error, error) { return []error{}, nil },
		"per-claim errors": func(_ context.Context, claims []idempotency.ClaimRef) ([]error, error) {
			errs := make([]error, len(claims))
			for i := range errs {
				errs[i] = errors.New("i/o timeout")
			}
			return errs, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &batchStore{MemoryStore: newMemory(t, 0)}
				store.hook = func(round int, claims []idempotency.ClaimRef) ([]error, error) {
					if round%2 == 1 { // every other round fails
						return fail(context.Background(), claims)
					}
					return nil, nil
				}
				cfg := idempotency.Config{Lease: time.Minute}
				m := newManager(t, store, cfg)
				wait := runMany(m, 10, 5*time.Minute)
				time.Sleep(4 * time.Minute)
				wantAllHeld(t, newManager(t, store, cfg), 10)
				wantAllRecorded(t, wait())
				time.Sleep(time.Minute) // the last round ends
			})
		})
	}
}

// TestRenewalRoundIsBoundedByItsPeriod: a store that hangs in a round
// until the round's context ends (at the renewal period, Lease/3) costs
// that round only: the next one starts at once and extends the claims.
func TestRenewalRoundIsBoundedByItsPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &batchStore{MemoryStore: newMemory(t, 0)}
		var hung atomic.Int64
		store.hook = func(round int, claims []idempotency.ClaimRef) ([]error, error) {
			return nil, nil
		}
		m := newManager(t, &hangOnce{batchStore: store, hung: &hung}, idempotency.Config{Lease: time.Minute})
		wait := runMany(m, 5, 3*time.Minute)
		time.Sleep(150 * time.Second)
		wantAllHeld(t, newManager(t, store, idempotency.Config{Lease: time.Minute}), 5)
		wantAllRecorded(t, wait())
		assert.Equal(t, int64(20*time.Second), hung.Load(), "the hung round ended with its context, after Lease/3")
		time.Sleep(time.Minute) // the last round ends
	})
}

// hangOnce is a batchStore whose first ExtendMany blocks until its
// context ends, and records how long that took.
type hangOnce struct {
	*batchStore
	once sync.Once
	hung *atomic.Int64
}

func (s *hangOnce) ExtendMany(ctx context.Context, claims []idempotency.ClaimRef, lease time.Duration) ([]error, error) {
	first := false
	s.once.Do(func() { first = true })
	if first {
		start := time.Now()
		<-ctx.Done()
		s.hung.Store(int64(time.Since(start)))
		return nil, ctx.Err()
	}
	return s.batchStore.ExtendMany(ctx, claims, lease)
}

// writeSlowly is a store whose Complete takes d before writing.
type writeSlowly struct {
	*idempotency.MemoryStore
	d time.Duration
}

func (s *writeSlowly) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	time.Sleep(s.d)
	return s.MemoryStore.Complete(ctx, key, owner, out, ttl)
}

// TestRenewalGoesOnWhileTheResultIsWritten: a result write that takes
// three leases (waiting for a connection of a busy pool, a slow store)
// still finds its claim: renewal stops only once the write is done.
func TestRenewalGoesOnWhileTheResultIsWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &writeSlowly{MemoryStore: newMemory(t, 0), d: 3 * time.Minute}
		m := newManager(t, store, idempotency.Config{Lease: time.Minute})
		v, err := idempotency.Do(context.Background(), m, "k", value(1))
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	})
}
