package redisstore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// The racer: the test binary started again with racerEnv set runs
// racerMain instead of the tests. It is one process of
// TestExactlyOnceAcrossProcesses: with a Manager and a Redis client of its
// own, it runs dups concurrent calls for each of keys keys, all at once;
// the operation counts its executions with INCR in Redis, then holds its
// claim until a call of the other racer met it.
//
// Protocol on its standard streams: it prints "ready" once connected and
// its calls are started (each waiting), waits for a line on its standard
// input (so that both racers' calls start together), then prints its racerReport as JSON and exits 0. It exits 1,
// with the reason on standard error, if it cannot run.

const (
	racerEnv       = "BULWARK_REDISSTORE_RACER" // the racer's Redis address
	racerPrefixEnv = "BULWARK_REDISSTORE_RACER_PREFIX"
	racerKeysEnv   = "BULWARK_REDISSTORE_RACER_KEYS"
	racerDupsEnv   = "BULWARK_REDISSTORE_RACER_DUPS"
)

// racerReport is what a racer saw.
type racerReport struct {
	PID        int
	Executed   int               // calls whose operation ran
	Replayed   int               // calls answered with another call's result
	InProgress int               // ErrInProgress answers (the call then tried again)
	Values     map[string]string // key → the value all its calls got
	Errors     []string          // calls that failed, and keys whose calls disagreed
}

// racerKey is the idempotency key of the i-th key of a race.
func racerKey(i int) string { return "race-" + strconv.Itoa(i) }

// racerCounter is the Redis key counting the executions of key's operation.
func racerCounter(prefix, key string) string { return prefix + "runs:" + key }

// racerMet is the Redis list a racer pushes to when a call for key met the
// other racer's claim.
func racerMet(prefix, key string) string { return prefix + "met:" + key }

func racerMain() int {
	if err := race(); err != nil {
		fmt.Fprintln(os.Stderr, "racer:", err)
		return 1
	}
	return 0
}

func race() error {
	addr, prefix := os.Getenv(racerEnv), os.Getenv(racerPrefixEnv)
	keys, err1 := strconv.Atoi(os.Getenv(racerKeysEnv))
	dups, err2 := strconv.Atoi(os.Getenv(racerDupsEnv))
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A connection for each key's operation waiting for the other racer,
	// and more for the calls.
	client := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 2*keys + 64})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		return err
	}
	m, err := idempotency.New(store, idempotency.Config{TTL: 10 * time.Minute, Lease: 30 * time.Second})
	if err != nil {
		return err
	}
	if err := client.Ping(ctx).Err(); err != nil {
		return err
	}
	pid := os.Getpid()
	start := make(chan struct{}) // the calls wait for the other racer
	rep := racerReport{PID: pid, Values: make(map[string]string, keys)}
	var mu sync.Mutex // guards rep
	var wg sync.WaitGroup
	for i := range keys {
		key := racerKey(i)
		counter, met := racerCounter(prefix, key), racerMet(prefix, key)
		op := func(ctx context.Context) (string, error) {
			n, err := client.Incr(ctx, counter).Result()
			if err != nil {
				return "", err
			}
			// Hold the claim until the other racer has met it (a call of
			// its got ErrInProgress and said so in met): so every key is
			// contended across the processes, whichever racer runs first.
			if err := client.BLPop(ctx, 20*time.Second, met).Err(); err != nil {
				return "", fmt.Errorf("waiting for the other racer to meet the claim: %w", err)
			}
			return fmt.Sprintf("pid %d, execution %d", pid, n), nil
		}
		for range dups {
			wg.Go(func() {
				<-start
				r, inProgress := callUntilDone(ctx, m, key, op, func() { client.LPush(ctx, met, pid) })
				mu.Lock()
				defer mu.Unlock()
				rep.InProgress += inProgress
				switch {
				case r.Err != nil:
					rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", key, r.Err))
					return
				case r.Replayed:
					rep.Replayed++
				default:
					rep.Executed++
				}
				if v, ok := rep.Values[key]; ok && v != r.Value {
					rep.Errors = append(rep.Errors, fmt.Sprintf("%s: calls got %q and %q", key, v, r.Value))
				}
				rep.Values[key] = r.Value
			})
		}
	}
	fmt.Println("ready")
	_, err = bufio.NewReader(os.Stdin).ReadString('\n')
	close(start)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("waiting for the start: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// callUntilDone calls op for key until the answer is not ErrInProgress
// (the key held by the other process), polling
// (1, 2, 4, then every 8 milliseconds) until ctx ends; it calls meet after the first ErrInProgress. It returns
// the last answer and the number of ErrInProgress answers.
func callUntilDone(ctx context.Context, m *idempotency.Manager, key string, op func(context.Context) (string, error), meet func()) (idempotency.Result[string], int) {
	inProgress := 0
	for {
		r := idempotency.Execute(ctx, m, key, "", op)
		if !errors.Is(r.Err, idempotency.ErrInProgress) {
			return r, inProgress
		}
		if inProgress++; inProgress == 1 {
			meet()
		}
		t := time.NewTimer(time.Millisecond << min(inProgress-1, 3))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return idempotency.Result[string]{Err: fmt.Errorf("still in progress: %w", context.Cause(ctx))}, inProgress
		}
	}
}

// TestExactlyOnceAcrossProcesses starts two OS processes (racers) with a
// Manager and a Redis client each, racing on 200 keys with 50 concurrent
// calls per key in each process: every key's operation must run exactly
// once in all, and every call must get that execution's value.
func TestExactlyOnceAcrossProcesses(t *testing.T) {
	const keys, dups, racers = 200, 50, 2
	addr := redisAddr(t)
	prefix := testPrefix()
	client := newClient(t, addr)
	t.Cleanup(func() { deleteKeys(client, prefix) })

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	procs := redistest.StartChildren(t, ctx, racers, "racer",
		racerEnv+"="+addr, racerPrefixEnv+"="+prefix,
		racerKeysEnv+"="+strconv.Itoa(keys), racerDupsEnv+"="+strconv.Itoa(dups))
	redistest.Go(t, procs) // start both at once
	var reports []racerReport
	for i, p := range procs {
		var rep racerReport
		if err := p.Report(&rep); err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
		reports = append(reports, rep)
	}

	executed, inProgress := 0, 0
	for i, rep := range reports {
		t.Logf("racer %d (pid %d): executed %d, replayed %d, ErrInProgress answers %d",
			i, rep.PID, rep.Executed, rep.Replayed, rep.InProgress)
		if len(rep.Errors) > 0 {
			t.Errorf("racer %d: %d errors, the first: %s", i, len(rep.Errors), rep.Errors[0])
		}
		if got := rep.Executed + rep.Replayed; got != keys*dups {
			t.Errorf("racer %d: %d calls answered; want %d", i, got, keys*dups)
		}
		executed += rep.Executed
		inProgress += rep.InProgress
	}
	if inProgress < keys {
		t.Errorf("the racers met each other's claims %d times; want at least once per key, %d", inProgress, keys)
	}
	if executed != keys {
		t.Errorf("the racers executed %d calls in all; want one per key, %d", executed, keys)
	}

	// The count in Redis: every key's operation ran exactly once.
	counters := make([]string, keys)
	for i := range counters {
		counters[i] = racerCounter(prefix, racerKey(i))
	}
	counts, err := client.MGet(t.Context(), counters...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range counts {
		if c != "1" {
			t.Errorf("key %s: operation ran %v times; want exactly 1", racerKey(i), c)
		}
	}
	// Every call of both processes got the one execution's value.
	for i := range keys {
		key := racerKey(i)
		want := reports[0].Values[key]
		if !strings.HasSuffix(want, "execution 1") {
			t.Errorf("key %s: racer 0 got %q; want the value of execution 1", key, want)
		}
		for j, rep := range reports[1:] {
			if got := rep.Values[key]; got != want {
				t.Errorf("key %s: racer %d got %q, racer 0 got %q", key, j+1, got, want)
			}
		}
	}
}
