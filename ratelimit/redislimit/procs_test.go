package redislimit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/ratelimit/redislimit"
)

// A caller: the test binary started again with childEnv set runs
// childMain instead of the tests. It is one process of
// TestSharedLimitAcrossProcesses: with a client and a limiter of its own
// (limit childRate per second on childKeyEnv), it calls the service at
// childURLEnv from childWorkers goroutines as fast as the limiter lets
// it, for childRun.
//
// Protocol on its standard streams: it prints "ready" once connected,
// waits for a line on its standard input (so that every caller starts at
// once), then prints its childReport as JSON and exits 0. It exits 1,
// with the reason on standard error, if it cannot run.

const (
	childEnv     = "BULWARK_REDISLIMIT_CHILD" // the caller's Redis address
	childKeyEnv  = "BULWARK_REDISLIMIT_CHILD_KEY"
	childURLEnv  = "BULWARK_REDISLIMIT_CHILD_URL"
	childRunEnv  = "BULWARK_REDISLIMIT_CHILD_RUN" // how long to call, as a duration
	childRate    = 50
	childBurst   = 5 // absorbs the lateness of the winning call (up to 80ms); see the package doc
	childWorkers = 4
)

// childReport is what a caller saw.
type childReport struct {
	PID       int
	Calls     int // calls that reached the service
	Rejected  int // calls refused near the end (their token came too late)
	Failures  int64
	Fallbacks int64
	LastError string // the last Redis failure, if any
	Errors    []string
}

func childMain() int {
	if err := runChild(); err != nil {
		fmt.Fprintln(os.Stderr, "caller:", err)
		return 1
	}
	return 0
}

func runChild() error {
	addr, key, url := os.Getenv(childEnv), os.Getenv(childKeyEnv), os.Getenv(childURLEnv)
	run, err := time.ParseDuration(os.Getenv(childRunEnv))
	if err != nil {
		return err
	}
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	if err := client.Ping(context.Background()).Err(); err != nil {
		return err
	}
	// A generous Timeout: the test measures the shared limit, and a
	// loaded machine (-race, four processes) can be slow to answer; the
	// fallback has tests of its own.
	shared, err := redislimit.New(client, redislimit.Config{Key: key, Rate: childRate, Burst: childBurst, Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	l, err := ratelimit.New("service", ratelimit.Config{Backend: shared})
	if err != nil {
		return err
	}
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: childWorkers}}
	call := func(ctx context.Context) (int, error) {
		req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the start: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	rep := childReport{PID: os.Getpid()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range childWorkers {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, err := ratelimit.Do(ctx, l, call)
				mu.Lock()
				switch {
				case err == nil:
					rep.Calls++
				case errors.Is(err, ratelimit.ErrLimited):
					rep.Rejected++ // the token would come after the end
				case ctx.Err() != nil:
				default:
					rep.Errors = append(rep.Errors, err.Error())
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	st := shared.Stats()
	rep.Failures, rep.Fallbacks = st.Failures, st.Fallbacks
	if st.LastError != nil {
		rep.LastError = st.LastError.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// TestSharedLimitAcrossProcesses: 4 OS processes, each with 4 goroutines
// calling as fast as their limiter lets them, share a limit of 50 calls
// per second (burst 5) through one redis-server for 10 seconds: the
// service sees them at 50 per second in all, within 5%, and never much
// more than 55 in any second.
func TestSharedLimitAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 seconds")
	}
	const procs, run = 4, 10 * time.Second
	addr := redisAddr(t)
	key := testKey()

	var mu sync.Mutex
	var seen []time.Time
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer svc.Close()

	ctx, cancel := context.WithTimeout(t.Context(), run+time.Minute)
	defer cancel()
	ps := redistest.StartChildren(t, ctx, procs, "caller",
		childEnv+"="+addr, childKeyEnv+"="+key,
		childURLEnv+"="+svc.URL, childRunEnv+"="+run.String())
	redistest.Go(t, ps)
	calls := 0
	for i, p := range ps {
		var rep childReport
		if err := p.Report(&rep); err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		t.Logf("caller %d (pid %d): %d calls, %d refused at the end, %d Redis failures", i, rep.PID, rep.Calls, rep.Rejected, rep.Failures)
		if len(rep.Errors) > 0 {
			t.Errorf("caller %d: %d errors, the first: %s", i, len(rep.Errors), rep.Errors[0])
		}
		if rep.Failures != 0 || rep.Fallbacks != 0 {
			t.Errorf("caller %d: %d Redis failures (the last: %s), %d calls on the local fallback; want none", i, rep.Failures, rep.LastError, rep.Fallbacks)
		}
		if rep.Calls < 50 {
			t.Errorf("caller %d: %d calls; every process should get a fair part of 500", i, rep.Calls)
		}
		calls += rep.Calls
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != calls {
		t.Errorf("the service saw %d calls, the callers made %d", len(seen), calls)
	}
	slices.SortFunc(seen, func(a, b time.Time) int { return a.Compare(b) })
	if len(seen) < 2 {
		t.Fatalf("the service saw %d calls", len(seen))
	}
	span := seen[len(seen)-1].Sub(seen[0])
	perSecond := float64(len(seen)-1) / span.Seconds()
	perRun := float64(len(seen)) / run.Seconds()
	t.Logf("the service saw %d calls over %v: %.2f/s between the first and the last; %.2f/s over the %v run",
		len(seen), span.Round(time.Millisecond), perSecond, perRun, run)
	for what, got := range map[string]float64{"first to last": perSecond, "over the run": perRun} {
		if got < childRate*0.95 || got > childRate*1.05 {
			t.Errorf("aggregate rate %s: %.2f/s; want %d/s within 5%%", what, got, childRate)
		}
	}
	// No second of the run saw much more than the limit: Redis allows at
	// most Rate + Burst calls in any second of its clock; the service sees
	// them after a wake-up and an HTTP round trip, which move a few across
	// the edges of its windows.
	for i, j := 0, 0; i < len(seen); i++ {
		for seen[j].Before(seen[i].Add(-time.Second)) {
			j++
		}
		if n := i - j + 1; n > childRate+childBurst+3 {
			t.Errorf("%d calls in the second before %v; want at most %d", n, seen[i].Sub(seen[0]), childRate+childBurst+3)
			break
		}
	}
}
