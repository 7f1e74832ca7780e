package bulwarkhttp_test

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// connTracker records the state of every connection of a server.
type connTracker struct {
	mu    sync.Mutex
	state map[net.Conn]http.ConnState
}

func (c *connTracker) track(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(c.state, conn)
	default:
		c.state[conn] = s
	}
}

// counts returns how many connections are open and how many of them are
// idle: between requests, or new and never used (a connection the client
// dialed for a request that another connection served sits in its pool
// unused).
func (c *connTracker) counts() (open, idle int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.state {
		open++
		if s == http.StateIdle || s == http.StateNew {
			idle++
		}
	}
	return open, idle
}

// 10,000 requests over 50 goroutines with random faults: every answer is
// whole, no goroutine is left, and the server's open connections are back
// to idle ones (then to none once the client closes them).
func TestManyRequestsWithRandomFaults(t *testing.T) {
	requests, workers := 10_000, 50
	if testing.Short() {
		requests = 1_000
	}
	ignore := goleak.IgnoreCurrent()
	tracker := &connTracker{state: make(map[net.Conn]http.ConnState)}
	var served atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		n := rand.IntN(4096)
		switch f := rand.IntN(100); {
		case f < 8:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "busy")
		case f < 12:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case f < 16:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "missing")
		case f < 20: // cut mid-body
			w.Header().Set("Content-Length", strconv.Itoa(n+100))
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, strings.Repeat("y", n/2))
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = c.Close()
			}
		case f < 22: // a big body, streamed to the caller
			w.Header().Set("X-Len", "20000")
			_, _ = io.WriteString(w, strings.Repeat("z", 20000))
		case f < 24:
			time.Sleep(time.Millisecond)
			fallthrough
		default:
			w.Header().Set("X-Len", strconv.Itoa(n))
			_, _ = io.WriteString(w, strings.Repeat("x", n))
		}
	}))
	srv.Config.ConnState = tracker.track
	srv.Start()
	defer srv.Close()

	stack := newStack(t, pipeline.Config{
		Idempotency: &pipeline.IdempotencyConfig{},
		Fallback:    &pipeline.FallbackConfig{},
		Breaker:     &breaker.Config{FailureThreshold: 1000, RequestTimeout: 5 * time.Second},
		Retry:       &retry.Config{MaxAttempts: 4, NoWait: true},
	})
	base := &http.Transport{MaxIdleConnsPerHost: workers}
	tr := &bulwarkhttp.Transport{Base: base, Stack: stack, MaxBodyBytes: 16 << 10}
	client := tr.Client()

	var next atomic.Int64
	var ok, statuses, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(requests) {
					return
				}
				var req *http.Request
				switch i % 5 {
				case 0:
					req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/items", strings.NewReader(`{"n":`+strconv.FormatInt(i, 10)+`}`))
					req.Header.Set("Idempotency-Key", "item-"+strconv.FormatInt(i, 10))
				case 1:
					req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/events", strings.NewReader("{}"))
				default:
					req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/pages/"+strconv.FormatInt(i%20, 10), nil)
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					var gaveUp *retry.Error
					if !errors.Is(err, bulwark.ErrRejected) && !errors.As(err, &gaveUp) {
						t.Errorf("request %d: unexpected error %v", i, err)
					}
					continue
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				switch {
				case err != nil:
					failed.Add(1) // a cut in a streamed body reaches the caller
				case resp.StatusCode == http.StatusOK:
					ok.Add(1)
					if want := resp.Header.Get("X-Len"); want != "" {
						assert.Equal(t, want, strconv.Itoa(len(body)), "request %d: a whole body", i)
					}
				default:
					statuses.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests, %d served: %d OK, %d other statuses, %d errors", requests, served.Load(), ok.Load(), statuses.Load(), failed.Load())
	assert.Equal(t, int64(requests), ok.Load()+statuses.Load()+failed.Load())
	assert.Greater(t, ok.Load(), int64(requests)*8/10)

	require.Eventually(t, func() bool {
		open, idle := tracker.counts()
		return open == idle && open <= workers
	}, 5*time.Second, 10*time.Millisecond, "every open connection is back to idle")
	open, _ := tracker.counts()
	t.Logf("%d idle connections", open)
	base.CloseIdleConnections()
	require.Eventually(t, func() bool { open, _ := tracker.counts(); return open == 0 }, 5*time.Second, 10*time.Millisecond)
	srv.Close()
	goleak.VerifyNone(t, ignore)
}
