package bulwarkhttp_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// A GET's 200 is kept; a failed or refused GET of the same URL is
// answered with the copy, marked with its age; nothing else is.
func TestFallbackAnswersFailedAndRefusedGetsWithTheKeptCopy(t *testing.T) {
	var mode atomic.Value // "up", "503", "404"
	mode.Store("up")
	srv := newServer(t, func(i int, w http.ResponseWriter, r *http.Request) {
		switch m := mode.Load().(string); {
		case m == "404":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "gone")
		case m == "503":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "down")
		case r.URL.Path == "/partial":
			w.WriteHeader(http.StatusPartialContent)
			_, _ = io.WriteString(w, "part")
		case r.URL.Path == "/big":
			_, _ = io.WriteString(w, strings.Repeat("b", 5000))
		default:
			w.Header().Set("ETag", `"v1"`)
			_, _ = io.WriteString(w, "page "+r.URL.Path+" v1")
		}
	})
	cfg := testConfig()
	cfg.Breaker.FailureThreshold = 100 // opened by hand below
	stack := newStack(t, cfg)
	client, tr := newClient(t, stack)
	tr.MaxBodyBytes = 4096
	get := func(path string) (*http.Response, *bulwark.Report, error) {
		ctx, report := bulwark.WithReport(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		resp, err := client.Do(req)
		return resp, report, err
	}

	for _, p := range []string{"/pages/1", "/partial", "/big"} {
		resp, _, err := get(p)
		require.NoError(t, err)
		assert.Empty(t, resp.Header.Get(bulwarkhttp.HeaderFallbackAge), "from the server")
		readAll(t, resp)
	}
	// A POST to the same URL is never answered from the GET's copy.
	mode.Store("503")
	resp, err := client.Post(srv.URL+"/pages/1", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	readAll(t, resp)

	// A failed GET: the copy, marked with its age, same headers and body.
	before := srv.count()
	resp, report, err := get("/pages/1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, `"v1"`, resp.Header.Get("ETag"))
	age, err := strconv.Atoi(resp.Header.Get(bulwarkhttp.HeaderFallbackAge))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, age, 0)
	assert.Equal(t, "page /pages/1 v1", readAll(t, resp))
	assert.True(t, report.FromCache())
	assert.Equal(t, before+3, srv.count(), "the server was tried first")

	// Neither a 206 nor a body over MaxBodyBytes was kept; an unknown
	// URL has no copy: the caller gets the 503.
	for _, p := range []string{"/partial", "/big", "/pages/2"} {
		resp, report, err := get(p)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, p)
		assert.Equal(t, "down", readAll(t, resp), p)
		assert.False(t, report.FromCache(), p)
	}

	// A final answer is never replaced by the copy.
	mode.Store("404")
	resp, _, err = get("/pages/1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "gone", readAll(t, resp))

	// A refused GET (circuit open) gets the copy without a request.
	b := stack.Breaker(srv.Listener.Addr().String())
	b.ForceOpen()
	require.Equal(t, breaker.Open, b.State())
	before = srv.count()
	resp, report, err = get("/pages/1")
	require.NoError(t, err)
	assert.Equal(t, "page /pages/1 v1", readAll(t, resp))
	assert.NotEmpty(t, resp.Header.Get(bulwarkhttp.HeaderFallbackAge))
	assert.True(t, report.FromCache())
	assert.Equal(t, before, srv.count(), "refused: no request")

	// Refused without a copy: an error wrapping ErrRejected.
	_, _, err = get("/pages/3")
	require.ErrorIs(t, err, bulwark.ErrRejected)
}

// The copies a caller gets are its own: changing one's headers changes
// neither the kept copy nor the next caller's.
func TestKeptCopiesAreNotSharedWithCallers(t *testing.T) {
	srv := newServer(t, statuses(200, 503))
	stack := newStack(t, testConfig())
	client, _ := newClient(t, stack)
	resp, err := client.Get(srv.URL + "/a")
	require.NoError(t, err)
	resp.Header.Set("X-Attempt", "changed by the caller")
	readAll(t, resp)

	for range 2 {
		resp, err = client.Get(srv.URL + "/a")
		require.NoError(t, err)
		assert.Equal(t, "1", resp.Header.Get("X-Attempt"))
		assert.NotEmpty(t, resp.Header.Get(bulwarkhttp.HeaderFallbackAge))
		resp.Header.Set("X-Attempt", "changed again")
		assert.Equal(t, "attempt 1: OK", readAll(t, resp))
	}
}
