package bulwarkhttp_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Sequential requests, failed attempts included, reuse one connection:
// bodies are read to their end (drained) before the next attempt.
func TestConnectionsAreReused(t *testing.T) {
	var conns, n atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%3 != 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, strings.Repeat("e", 2000))
			return
		}
		_, _ = io.WriteString(w, strings.Repeat("x", 3000))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	for _, limit := range []int64{0, 1000} { // buffered, then streamed
		client, tr := newClient(t, newStack(t, testConfig()))
		tr.MaxBodyBytes = limit
		for range 20 {
			resp, err := client.Get(srv.URL)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Len(t, readAll(t, resp), 3000)
		}
	}
	assert.Equal(t, int32(2), conns.Load(), "one connection per client")
	assert.Equal(t, int32(120), n.Load())
}
