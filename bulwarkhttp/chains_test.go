package bulwarkhttp_test

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// plainConfig is a breaker and retry without fallback or idempotency: a
// GET then carries no call options, and after the first request to a
// host runs through the executor's bound chain instead of
// pipeline.Execute.
func plainConfig(attempts int) pipeline.Config {
	return pipeline.Config{
		Breaker: &breaker.Config{FailureThreshold: 3, RequestTimeout: 5 * time.Second},
		Retry:   &retry.Config{MaxAttempts: attempts, NoWait: true},
	}
}

// getReport sends a GET with a Report attached.
func getReport(t *testing.T, client *http.Client, url string) (*http.Response, *bulwark.Report, error) {
	t.Helper()
	ctx, rep := bulwark.WithReport(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	return resp, rep, err
}

// The first request to a host and the later ones (which run through the
// executor's bound chain) see the same layers and report alike.
func TestEveryRequestReportsWhatTheLayersDid(t *testing.T) {
	t.Run("retried", func(t *testing.T) {
		srv := newServer(t, func(i int, w http.ResponseWriter, r *http.Request) {
			statuses([]int{503, 200}[i%2])(0, w, r)
		})
		client, _ := newClient(t, newStack(t, plainConfig(3)))
		for n := range 4 {
			resp, rep, err := getReport(t, client, srv.URL)
			require.NoError(t, err, "request %d", n)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "request %d", n)
			assert.Equal(t, "attempt 1: OK", readAll(t, resp), "request %d", n)
			assert.Equal(t, 2, rep.Attempts(), "request %d", n)
			assert.False(t, rep.Rejected(), "request %d", n)
		}
		assert.Equal(t, 8, srv.count())
	})
	t.Run("refused", func(t *testing.T) {
		srv := newServer(t, statuses(503))
		client, _ := newClient(t, newStack(t, plainConfig(2)))
		for n := range 3 { // the breaker opens after 3 failed calls
			resp, rep, err := getReport(t, client, srv.URL)
			require.NoError(t, err, "request %d", n)
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "request %d", n)
			readAll(t, resp)
			assert.Equal(t, 2, rep.Attempts(), "request %d", n)
		}
		_, rep, err := getReport(t, client, srv.URL)
		require.ErrorIs(t, err, bulwark.ErrRejected)
		assert.True(t, rep.Rejected())
		assert.Zero(t, rep.Attempts())
		assert.Equal(t, 6, srv.count(), "the refused request was not sent")
	})
}

// An executor configured anew after requests ran through its bound chain
// serves the next request with its new layers.
func TestReconfiguredExecutorServesTheNextRequest(t *testing.T) {
	srv := newServer(t, statuses(200, 200, 503))
	stack := newStack(t, plainConfig(3))
	client, _ := newClient(t, stack)
	for range 2 {
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		readAll(t, resp)
	}
	require.NoError(t, stack.Configure(srv.Listener.Addr().String(), plainConfig(1)))
	resp, rep, err := getReport(t, client, srv.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	readAll(t, resp)
	assert.Equal(t, 1, rep.Attempts(), "sent once: the new MaxAttempts")
	assert.Equal(t, 3, srv.count())
}

// Many goroutines, several hosts, bound chains made while others run
// through them (run with -race).
func TestBoundChainsUnderConcurrentRequests(t *testing.T) {
	var srvs []*server
	for range 3 {
		srvs = append(srvs, newServer(t, statuses(200)))
	}
	client, _ := newClient(t, newStack(t, plainConfig(3)))
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			for n := range 30 {
				srv := srvs[(g+n)%len(srvs)]
				resp, rep, err := getReport(t, client, srv.URL)
				if !assert.NoError(t, err) {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				assert.Equal(t, 1, rep.Attempts())
			}
		})
	}
	wg.Wait()
	total := 0
	for _, srv := range srvs {
		total += srv.count()
	}
	assert.Equal(t, 12*30, total)
}
