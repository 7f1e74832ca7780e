package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/redis/go-redis/v9"
)

// Managers over stores with clients of their own meet only in Redis, as
// Managers in separate processes do.

// newManagers returns n Managers over prefix of the server at addr, each
// with a client of its own, and a client for the test.
func newManagers(t *testing.T, addr, prefix string, n int, cfg idempotency.Config) ([]*idempotency.Manager, *redis.Client) {
	t.Helper()
	var client *redis.Client
	ms := make([]*idempotency.Manager, n)
	for i := range ms {
		var s *redisstore.Store
		s, client = newStore(t, addr, redisstore.Config{Prefix: prefix})
		m, err := idempotency.New(s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
	}
	return ms, client
}

func TestTwoManagersExactlyOnce(t *testing.T) {
	const keys, dups = 50, 20
	prefix := testPrefix()
	ms, client := newManagers(t, redisAddr(t), prefix, 2, idempotency.Config{})
	ctx := t.Context()
	counter := prefix + "runs:"
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		values = map[string]map[string]int{} // key → value → calls
	)
	for k := range keys {
		key := fmt.Sprint("key-", k)
		op := func(ctx context.Context) (string, error) {
			n, err := client.Incr(ctx, counter+key).Result()
			return fmt.Sprintf("%s run %d", key, n), err
		}
		for _, m := range ms {
			for range dups {
				wg.Go(func() {
					r, _ := callUntilDone(ctx, m, key, op, func() {})
					mu.Lock()
					defer mu.Unlock()
					if r.Err != nil {
						t.Errorf("%s: %v", key, r.Err)
						return
					}
					if values[key] == nil {
						values[key] = map[string]int{}
					}
					values[key][r.Value]++
				})
			}
		}
	}
	wg.Wait()
	for k := range keys {
		key := fmt.Sprint("key-", k)
		if n := client.Get(ctx, counter+key).Val(); n != "1" {
			t.Errorf("%s ran %s times; want once", key, n)
		}
		want := map[string]int{key + " run 1": 2 * dups}
		if got := values[key]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: calls got %v; want %v", key, got, want)
		}
	}
}

func TestDuplicateElsewhereGetsInProgress(t *testing.T) {
	ms, _ := newManagers(t, redisAddr(t), testPrefix(), 2, idempotency.Config{})
	a, b := ms[0], ms[1]
	ctx := t.Context()
	started, finish := make(chan struct{}), make(chan struct{})
	done := make(chan idempotency.Result[string])
	go func() {
		done <- idempotency.Execute(ctx, a, "k", "", func(context.Context) (string, error) {
			close(started)
			<-finish
			return "from a", nil
		})
	}()
	<-started

	ranB := false
	opB := func(context.Context) (string, error) { ranB = true; return "from b", nil }
	r := idempotency.Execute(ctx, b, "k", "", opB)
	if !errors.Is(r.Err, idempotency.ErrInProgress) || errors.Is(r.Err, bulwark.ErrRejected) || ranB {
		t.Fatalf("duplicate while another Manager runs: %+v (ran %v); want ErrInProgress, not ErrRejected, nothing run", r, ranB)
	}

	close(finish)
	if r := <-done; r.Err != nil || r.Value != "from a" || r.Replayed {
		t.Fatalf("first call: %+v; want its own value", r)
	}
	rctx, rep := bulwark.WithReport(ctx)
	r = idempotency.Execute(rctx, b, "k", "", opB)
	if r.Err != nil || r.Value != "from a" || !r.Replayed || ranB {
		t.Fatalf("duplicate after completion: %+v (ran %v); want the first value replayed", r, ranB)
	}
	if !rep.Replayed() {
		t.Fatal("the replay was not marked in the call's Report")
	}
}

func TestPermanentErrorReplayedElsewhere(t *testing.T) {
	ms, _ := newManagers(t, redisAddr(t), testPrefix(), 2, idempotency.Config{CacheErrors: true})
	ctx := t.Context()
	runs := 0
	charge := func(context.Context) (int, error) {
		runs++
		return 0, idempotency.Permanent(errors.New("card declined"))
	}
	if _, err := idempotency.Do(ctx, ms[0], "k", charge); err == nil || err.Error() != "card declined" {
		t.Fatalf("first call: %v; want card declined", err)
	}
	r := idempotency.Execute(ctx, ms[1], "k", "", charge)
	if r.Err == nil || r.Err.Error() != "card declined" || !r.Replayed || runs != 1 {
		t.Fatalf("duplicate on another Manager: %+v after %d runs; want the stored error replayed, 1 run", r, runs)
	}
}

func TestTransientErrorReleasesElsewhere(t *testing.T) {
	ms, _ := newManagers(t, redisAddr(t), testPrefix(), 2, idempotency.Config{})
	ctx := t.Context()
	runs := 0
	op := func(context.Context) (int, error) {
		if runs++; runs == 1 {
			return 0, errors.New("timeout")
		}
		return runs, nil
	}
	if _, err := idempotency.Do(ctx, ms[0], "k", op); err == nil {
		t.Fatal("first call succeeded; want its error")
	}
	if v, err := idempotency.Do(ctx, ms[1], "k", op); err != nil || v != 2 {
		t.Fatalf("retry on another Manager: %v, %v; want a second run", v, err)
	}
}

func TestKeyReuseElsewhere(t *testing.T) {
	ms, _ := newManagers(t, redisAddr(t), testPrefix(), 2, idempotency.Config{})
	ctx := t.Context()
	op := func(context.Context) (string, error) { return "ok", nil }
	if _, err := idempotency.DoPayload(ctx, ms[0], "k", "fp-1", op); err != nil {
		t.Fatal(err)
	}
	if _, err := idempotency.DoPayload(ctx, ms[1], "k", "fp-2", op); !errors.Is(err, idempotency.ErrKeyReuse) {
		t.Fatalf("same key, other payload, other Manager: %v; want ErrKeyReuse", err)
	}
}

// TestRenewalKeepsSlowCallsClaim runs an operation for twice its lease:
// the Manager's renewals (Extend, every Lease/3) keep the claim, so a
// duplicate elsewhere still gets ErrInProgress.
func TestRenewalKeepsSlowCallsClaim(t *testing.T) {
	const lease = 300 * time.Millisecond
	ms, client := newManagers(t, redisAddr(t), testPrefix(), 2, idempotency.Config{Lease: lease})
	ctx := t.Context()
	inside := make(chan struct{})
	finish := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := idempotency.Do(ctx, ms[0], "slow", func(context.Context) (int, error) {
			close(inside)
			<-finish
			return 1, nil
		})
		done <- err
	}()
	<-inside
	waitRedisTime(t, client, 2*lease)
	ranB := false
	_, err := idempotency.Do(ctx, ms[1], "slow", func(context.Context) (int, error) { ranB = true; return 2, nil })
	close(finish)
	if !errors.Is(err, idempotency.ErrInProgress) || ranB {
		t.Fatalf("duplicate after twice the lease of a running call: %v (ran %v); want ErrInProgress", err, ranB)
	}
	if err := <-done; err != nil {
		t.Fatalf("slow call: %v; want its result recorded", err)
	}
}

// waitRedisTime returns once d has passed on the Redis server's clock,
// which is the clock of leases and TTLs: it sets a marker key that
// expires after d and polls until Redis has dropped it. This is the one
// kind of real waiting the tests do.
func waitRedisTime(t *testing.T, client *redis.Client, d time.Duration) {
	t.Helper()
	ctx := t.Context()
	marker := testPrefix() + "clock"
	if err := client.Set(ctx, marker, 1, d).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(d + 10*time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for client.Exists(ctx, marker).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Redis has not expired a key set to expire after %v", d)
		}
		<-tick.C
	}
}
