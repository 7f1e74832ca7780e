package redisstore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestRedisPauseRunsNothingTwice measures duplicate executions across a
// Redis pause (issue 14, item 10). Four OS processes (this test binary
// started again), each with a Manager (10s lease) and a client of its own
// (1s read timeout), race on 500 keys with 8 concurrent calls per key
// each; every operation takes 0.2–3.3s, and 1s after the start the server
// is paused for 3s (CLIENT PAUSE 3000), so that most results are written
// during the pause. A call that gets ErrInProgress or ErrStore tries
// again until it has the key's result. Each process counts the
// executions of each key's operation; the test sums them.
//
// A result write that failed during the pause used to be reported at once
// (ErrNotRecorded); its key then ran again in another process once the
// lease ran out. Written again while the lease holds, every key runs
// exactly once.
func TestRedisPauseRunsNothingTwice(t *testing.T) {
	const procs, keys, dups = 4, 500, 8
	srv := ownRedis(t)
	addr, prefix := srv.Addr(), testPrefix()
	client := newClient(t, addr)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ps := redistest.StartChildren(t, ctx, procs, "process",
		pauseRacerEnv+"="+addr, racerPrefixEnv+"="+prefix,
		racerKeysEnv+"="+strconv.Itoa(keys), racerDupsEnv+"="+strconv.Itoa(dups))
	start := time.Now()
	redistest.Go(t, ps)
	time.Sleep(time.Second) // real time: the processes run on the real clock
	if err := client.Do(ctx, "CLIENT", "PAUSE", 3000).Err(); err != nil {
		t.Fatal(err)
	}

	executions := make([]int, keys)
	notRecorded := 0
	for i, p := range ps {
		var rep pauseReport
		if err := p.Report(&rep); err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		for k, n := range rep.Executions {
			executions[k] += n
		}
		notRecorded += rep.NotRecorded
		if len(rep.Errors) > 0 {
			t.Errorf("process %d: %d calls failed, the first: %s", i, len(rep.Errors), rep.Errors[0])
		}
		if rep.Answered != keys*dups {
			t.Errorf("process %d: %d calls answered; want %d", i, rep.Answered, keys*dups)
		}
	}
	duplicates, never := 0, 0
	for _, n := range executions {
		if n == 0 {
			never++
		}
		duplicates += max(n-1, 0)
	}
	t.Logf("%d processes × %d keys × %d calls, CLIENT PAUSE 3000 after 1s, 10s lease: %d duplicate executions, %d ErrNotRecorded answers, done after %v",
		procs, keys, dups, duplicates, notRecorded, time.Since(start).Round(time.Millisecond))
	if never > 0 {
		t.Errorf("%d keys never ran", never)
	}
	if duplicates > 0 {
		t.Errorf("%d duplicate executions across the pause; want 0", duplicates)
	}
}

const pauseRacerEnv = "BULWARK_REDISSTORE_PAUSE_RACER" // the process's Redis address

// pauseReport is what a process of TestRedisPauseRunsNothingTwice saw.
type pauseReport struct {
	Executions  []int    // per key, executions of its operation in this process
	Answered    int      // calls that got the key's result (or ErrNotRecorded)
	NotRecorded int      // ErrNotRecorded answers
	Errors      []string // calls that got neither
}

// pauseRacerMain is a process of TestRedisPauseRunsNothingTwice. Protocol
// as racerMain's: "ready", then a line on standard input, then its
// pauseReport as JSON.
func pauseRacerMain() int {
	if err := pauseRace(); err != nil {
		fmt.Fprintln(os.Stderr, "pause racer:", err)
		return 1
	}
	return 0
}

func pauseRace() error {
	addr, prefix := os.Getenv(pauseRacerEnv), os.Getenv(racerPrefixEnv)
	keys, err1 := strconv.Atoi(os.Getenv(racerKeysEnv))
	dups, err2 := strconv.Atoi(os.Getenv(racerDupsEnv))
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64, ReadTimeout: time.Second, WriteTimeout: time.Second})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		return err
	}
	defer store.Close()
	m, err := idempotency.New(store, idempotency.Config{TTL: 10 * time.Minute, Lease: 10 * time.Second})
	if err != nil {
		return err
	}
	if err := client.Ping(ctx).Err(); err != nil {
		return err
	}
	executions := make([]atomic.Int32, keys)
	var (
		mu  sync.Mutex
		rep = pauseReport{Executions: make([]int, keys)}
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range keys {
		key := "pause-" + strconv.Itoa(i)
		d := 200*time.Millisecond + time.Duration(i%32)*100*time.Millisecond
		op := func(context.Context) (string, error) {
			executions[i].Add(1)
			time.Sleep(d)
			return key + " done", nil
		}
		for range dups {
			wg.Go(func() {
				<-start
				for {
					r := idempotency.Execute(ctx, m, key, "", op)
					if errors.Is(r.Err, idempotency.ErrInProgress) || errors.Is(r.Err, idempotency.ErrStore) {
						// Held elsewhere, or Redis did not answer: ask again.
						t := time.NewTimer(100*time.Millisecond + rand.N(100*time.Millisecond))
						select {
						case <-t.C:
							continue
						case <-ctx.Done():
							t.Stop()
						}
					}
					mu.Lock()
					switch {
					case errors.Is(r.Err, idempotency.ErrNotRecorded):
						rep.Answered++
						rep.NotRecorded++
					case r.Err != nil:
						rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", key, r.Err))
					case r.Value != key+" done":
						rep.Errors = append(rep.Errors, fmt.Sprintf("%s: got %q", key, r.Value))
					default:
						rep.Answered++
					}
					mu.Unlock()
					return
				}
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
	for i := range executions {
		rep.Executions[i] = int(executions[i].Load())
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}
