package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/redis/go-redis/v9"
)

// TestExtendManyAfterScriptFlush: a server that lost its scripts (a
// restart, SCRIPT FLUSH) answers a batch's extensions with NOSCRIPT; the
// store sends the script and extends them all, over a client of one
// server (one script per batch) and over another (pipelined scripts).
func TestExtendManyAfterScriptFlush(t *testing.T) {
	for name, wrap := range map[string]func(*redis.Client) redis.UniversalClient{
		"script":   func(c *redis.Client) redis.UniversalClient { return c },
		"pipeline": func(c *redis.Client) redis.UniversalClient { return otherClient{c} },
	} {
		t.Run(name, func(t *testing.T) {
			prefix := testPrefix()
			client := newClient(t, redisAddr(t))
			t.Cleanup(func() { deleteKeys(client, prefix) })
			s, err := redisstore.New(wrap(client), redisstore.Config{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			ctx := t.Context()
			claims := make([]idempotency.ClaimRef, 1500) // two batches
			for i := range claims {
				claims[i] = idempotency.ClaimRef{Key: fmt.Sprint("k", i), Owner: "owner"}
				if _, ok, err := s.Claim(ctx, claims[i].Key, "owner", "", time.Minute); err != nil || !ok {
					t.Fatalf("claim %d: claimed %v, error %v", i, ok, err)
				}
			}
			if err := client.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			errs, err := s.ExtendMany(ctx, claims, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("claim %d after SCRIPT FLUSH: %v; want it extended", i, err)
				}
			}
			for _, k := range []string{"k0", "k999", "k1000", "k1499"} {
				if ttl := client.PTTL(ctx, prefix+k).Val(); ttl < 59*time.Minute {
					t.Fatalf("%s's lease is %v after an extension to 1h", k, ttl)
				}
			}
		})
	}
}

// TestExtendManyContextEnded: a batch whose context ended reports every
// claim as failed, not as extended nor as lost.
func TestExtendManyContextEnded(t *testing.T) {
	s, _ := newStore(t, redisAddr(t), redisstore.Config{})
	if _, ok, err := s.Claim(t.Context(), "k", "owner", "", time.Minute); err != nil || !ok {
		t.Fatalf("claimed %v, error %v", ok, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	errs, err := s.ExtendMany(ctx, []idempotency.ClaimRef{{Key: "k", Owner: "owner"}, {Key: "other", Owner: "owner"}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err == nil || errors.Is(err, idempotency.ErrLeaseLost) || !errors.Is(err, context.Canceled) {
			t.Errorf("claim %d with an ended context: %v; want the context's error", i, err)
		}
	}
}

// TestRenewalTenThousandClaims: 10,000 concurrent keyed calls on one
// Manager, with a 1s lease, each running for at least 2s (twice the
// lease): the Manager's batched renewal keeps every claim. While they run,
// a second Manager with a client of its own (as a second process would
// have) tries every key after more than a lease passed on the Redis
// clock: it gets ErrInProgress for each and never runs one. Afterwards
// the first Manager's calls all recorded their results (no
// ErrNotRecorded), and the second one replays them.
func TestRenewalTenThousandClaims(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 calls of 2s")
	}
	const n = 10_000
	const lease = time.Second
	addr, prefix := redisAddr(t), testPrefix()
	newManager := func() *idempotency.Manager {
		client := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
		t.Cleanup(func() { deleteKeys(client, prefix); _ = client.Close() })
		s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		m, err := idempotency.New(s, idempotency.Config{Lease: lease, TTL: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	first, second := newManager(), newManager()
	ctx := t.Context()
	clock := newClient(t, addr)

	var started, ranSecond atomic.Int64
	allStarted := make(chan struct{})
	finish := make(chan struct{})
	results := make([]idempotency.Result[string], n)
	var wg sync.WaitGroup
	for i := range n {
		key := "k" + strconv.Itoa(i)
		wg.Go(func() {
			results[i] = idempotency.Execute(ctx, first, key, "", func(context.Context) (string, error) {
				if started.Add(1) == n {
					close(allStarted)
				}
				min2s := time.NewTimer(2 * time.Second)
				defer min2s.Stop()
				<-min2s.C
				<-finish
				return "first " + key, nil
			})
		})
	}
	select {
	case <-allStarted:
	case <-time.After(time.Minute):
		close(finish)
		wg.Wait()
		t.Fatalf("only %d of %d calls started within a minute", started.Load(), n)
	}
	// Every claim was made more than a lease ago: only renewal holds them.
	waitRedisTime(t, clock, lease+lease/5)
	conflicts := tryAll(t, n, func(key string) idempotency.Result[string] {
		return idempotency.Execute(ctx, second, key, "", func(context.Context) (string, error) {
			ranSecond.Add(1)
			return "second " + key, nil
		})
	}, func(key string, r idempotency.Result[string]) error {
		if !errors.Is(r.Err, idempotency.ErrInProgress) {
			return fmt.Errorf("%s on the second Manager while the first runs it: %+v; want ErrInProgress", key, r)
		}
		return nil
	})
	close(finish)
	wg.Wait()
	if conflicts > 0 || ranSecond.Load() > 0 {
		t.Fatalf("%d of %d keys were not held by the first Manager; the second ran %d operations", conflicts, n, ranSecond.Load())
	}
	lost := 0
	for i, r := range results {
		if r.Err != nil || r.Replayed || r.Value != "first k"+strconv.Itoa(i) {
			if lost++; lost <= 3 {
				t.Errorf("call %d on the first Manager: %+v; want its own value recorded", i, r)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d claims lost", lost, n)
	}
	tryAll(t, n, func(key string) idempotency.Result[string] {
		return idempotency.Execute(ctx, second, key, "", func(context.Context) (string, error) {
			ranSecond.Add(1)
			return "second " + key, nil
		})
	}, func(key string, r idempotency.Result[string]) error {
		if r.Err != nil || !r.Replayed || r.Value != "first "+key {
			return fmt.Errorf("%s on the second Manager after the first completed: %+v; want the first's value replayed", key, r)
		}
		return nil
	})
	if ranSecond.Load() > 0 {
		t.Fatalf("the second Manager ran %d operations", ranSecond.Load())
	}
}

// tryAll calls call for keys k0..k(n-1), 64 at a time, and returns how
// many answers check refused, reporting the first few.
func tryAll(t *testing.T, n int, call func(key string) idempotency.Result[string], check func(key string, r idempotency.Result[string]) error) int {
	t.Helper()
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				key := "k" + strconv.FormatInt(i, 10)
				if err := check(key, call(key)); err != nil {
					if bad.Add(1) <= 3 {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	return int(bad.Load())
}
