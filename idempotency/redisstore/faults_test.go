package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/redis/go-redis/v9"
)

// TestRedisDown stops the Redis server while calls run, then starts it
// again on the same port: claims fail closed (nothing runs) with an error
// naming the store, results that cannot be recorded are reported, and
// calls proceed once the server is back. A result write is retried while
// the claim's lease holds (2s here), then reported.
func TestRedisDown(t *testing.T) {
	srv := ownRedis(t) // no persistence: a restart forgets every record
	s, client := newStore(t, srv.Addr(), redisstore.Config{})
	m, err := idempotency.New(s, idempotency.Config{Lease: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var runs atomic.Int64 // executions of every operation below
	value := func(v string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { runs.Add(1); return v, nil }
	}

	if _, err := idempotency.Do(ctx, m, "before", value("before")); err != nil {
		t.Fatal(err)
	}

	// Two calls are running when the server dies: one will succeed, one
	// will fail.
	var inside sync.WaitGroup
	inside.Add(2)
	stopped := make(chan struct{})
	results := make(chan idempotency.Result[string], 2)
	for _, fail := range []bool{false, true} {
		go func() {
			results <- idempotency.Execute(ctx, m, fmt.Sprint("running-", fail), "", func(context.Context) (string, error) {
				runs.Add(1)
				inside.Done()
				<-stopped
				if fail {
					return "", errors.New("service failed")
				}
				return "ran during the outage", nil
			})
		}()
	}
	inside.Wait()
	srv.Stop()
	close(stopped)
	for range 2 {
		r := <-results
		if r.Value != "" {
			// A success that could not be recorded: the value, and the
			// failure to record it.
			if r.Value != "ran during the outage" || !errors.Is(r.Err, idempotency.ErrNotRecorded) || !strings.Contains(r.Err.Error(), `redisstore: complete "running-false"`) {
				t.Errorf("success while Redis is down: %q, %v; want its value and ErrNotRecorded naming the store", r.Value, r.Err)
			}
			continue
		}
		// A failure whose claim could not be released says so.
		if !errors.Is(r.Err, idempotency.ErrStore) || !strings.Contains(r.Err.Error(), "service failed") || !strings.Contains(r.Err.Error(), `redisstore: release "running-true"`) {
			t.Errorf("failure while Redis is down: %v; want the operation's error joined with ErrStore naming the store", r.Err)
		}
	}

	// New calls, and duplicates of a completed one, fail closed.
	ranBefore := runs.Load()
	var calls sync.WaitGroup
	for _, key := range []string{"new", "before"} {
		calls.Go(func() {
			start := time.Now()
			r := idempotency.Execute(ctx, m, key, "", value("should not run"))
			if !errors.Is(r.Err, idempotency.ErrStore) || !strings.Contains(r.Err.Error(), fmt.Sprintf("redisstore: claim %q", key)) {
				t.Errorf("call for %q while Redis is down: %v; want ErrStore naming the store", key, r.Err)
			}
			t.Logf("the claim of %q failed after %v (go-redis's default retries)", key, time.Since(start).Round(time.Millisecond))
		})
	}
	calls.Wait()
	if n := runs.Load(); n != ranBefore {
		t.Fatalf("%d operations ran while Redis was down; want none", n-ranBefore)
	}

	// Back on the same port: calls proceed (the store sends its scripts
	// again). Without persistence the server forgot the completed key, so
	// it runs again.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// go-redis's pool, after failing to dial many times, answers with its
	// last dial error until a background dial (once a second) succeeds.
	waitReachable(t, client)
	for _, key := range []string{"new", "before"} {
		first := idempotency.Execute(ctx, m, key, "", value(key+" after the restart"))
		again := idempotency.Execute(ctx, m, key, "", value("should not run"))
		if first.Err != nil || first.Replayed || first.Value != key+" after the restart" {
			t.Errorf("first call for %q after the restart: %+v; want it executed", key, first)
		}
		if again.Err != nil || !again.Replayed || again.Value != first.Value {
			t.Errorf("duplicate for %q after the restart: %+v; want %q replayed", key, again, first.Value)
		}
	}
	if n := runs.Load(); n != ranBefore+2 {
		t.Fatalf("%d operations ran after the restart; want 2", n-ranBefore)
	}
}

// TestRestartWithPersistence: with the append-only file, completed
// records survive a crash of the server, and their duplicates replay.
func TestRestartWithPersistence(t *testing.T) {
	srv := ownRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	s, _ := newStore(t, srv.Addr(), redisstore.Config{})
	m, err := idempotency.New(s, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	runs := 0
	op := func(context.Context) (int, error) { runs++; return 42, nil }
	if _, err := idempotency.Do(ctx, m, "k", op); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil { // killed, as a crash would
		t.Fatal(err)
	}
	r := idempotency.Execute(ctx, m, "k", "", op)
	if r.Err != nil || !r.Replayed || r.Value != 42 || runs != 1 {
		t.Fatalf("duplicate after a crash and restart: %+v after %d runs; want 42 replayed, 1 run", r, runs)
	}
}

// TestCrashedHolderReclaimedOnce: a holder claims a key and never
// completes (its process died). Once its lease runs out on the Redis
// server's clock, exactly one of several competing callers, on Managers
// with clients of their own, runs the operation; the others get its
// result, and the dead holder can no longer complete.
func TestCrashedHolderReclaimedOnce(t *testing.T) {
	const lease = 300 * time.Millisecond
	const managers, callers = 4, 5
	addr, prefix := redisAddr(t), testPrefix()
	ms, _ := newManagers(t, addr, prefix, managers, idempotency.Config{})
	crashed, _ := newStore(t, addr, redisstore.Config{Prefix: prefix})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	claimed := time.Now()
	if _, ok, err := crashed.Claim(ctx, "k", "crashed-holder", "", lease); err != nil || !ok {
		t.Fatalf("the holder's claim: claimed %v, error %v", ok, err)
	}
	var (
		executions atomic.Int64
		ranAt      atomic.Int64 // nanoseconds after the claim
		wg         sync.WaitGroup
		mu         sync.Mutex
		values     = map[string]int{}
		inProgress int
	)
	for i, m := range ms {
		op := func(context.Context) (string, error) {
			executions.Add(1)
			ranAt.Store(int64(time.Since(claimed)))
			return fmt.Sprint("reclaimed by manager ", i), nil
		}
		for range callers {
			wg.Go(func() {
				r, n := callUntilDone(ctx, m, "k", op, func() {})
				mu.Lock()
				defer mu.Unlock()
				inProgress += n
				if r.Err != nil {
					t.Errorf("competing caller: %v", r.Err)
					return
				}
				values[r.Value]++
			})
		}
	}
	wg.Wait()
	if n := executions.Load(); n != 1 {
		t.Fatalf("the operation ran %d times after the holder died; want exactly once", n)
	}
	// Redis keeps expiries in whole milliseconds.
	if at := time.Duration(ranAt.Load()); at < lease-time.Millisecond {
		t.Fatalf("the operation ran %v after the dead holder's claim; want no sooner than its lease, %v", at, lease)
	}
	if len(values) != 1 {
		t.Fatalf("competing callers got %v; want one value for all", values)
	}
	t.Logf("%d ErrInProgress answers before the lease ran out", inProgress)
	err := crashed.Complete(ctx, "k", "crashed-holder", idempotency.Outcome{Value: "late"}, time.Minute)
	if !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("the dead holder's late Complete: %v; want ErrLeaseLost", err)
	}
}

// TestFullRedisFailsClosed: a Redis out of memory under the noeviction
// policy refuses the claim scripts, and the Manager fails closed.
func TestFullRedisFailsClosed(t *testing.T) {
	srv := ownRedis(t, "--maxmemory-policy", "noeviction")
	s, client := newStore(t, srv.Addr(), redisstore.Config{})
	if err := client.ConfigSet(t.Context(), "maxmemory", "1").Err(); err != nil { // less than it holds already
		t.Fatal(err)
	}
	m, err := idempotency.New(s, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	_, err = idempotency.Do(t.Context(), m, "k", func(context.Context) (int, error) { ran = true; return 1, nil })
	if !errors.Is(err, idempotency.ErrStore) || !strings.Contains(err.Error(), `redisstore: claim "k": OOM`) || ran {
		t.Fatalf("claim on a full Redis: %v (ran %v); want ErrStore with Redis's OOM error, nothing run", err, ran)
	}
}

// waitReachable returns once client reaches its server again, within 10s.
func waitReachable(t *testing.T, client *redis.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for client.Ping(t.Context()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the client does not reach the restarted server")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
