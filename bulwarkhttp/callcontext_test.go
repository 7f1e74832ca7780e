package bulwarkhttp_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// The call's context outlives the call for the streamed body handed to
// the caller, and only for it: the streamed bodies of failed attempts are
// drained and closed during the retries without ending it, and with
// AbandonOnTimeout (the breaker releases the context on another
// goroutine, possibly after RoundTrip returned) the body stays readable.
func TestStreamedBodiesAndTheCallsContext(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 100*1024/16)
	failed := bytes.Repeat([]byte("busy "), 2000) // 10 KB: streamed too
	for _, tc := range []struct {
		name    string
		abandon bool
	}{
		{"breaker waits", false},
		{"AbandonOnTimeout", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(i int, w http.ResponseWriter, _ *http.Request) {
				if i < 2 {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write(failed)
					return
				}
				_, _ = w.Write(big)
			})
			cfg := testConfig()
			cfg.Breaker.AbandonOnTimeout = tc.abandon
			client, tr := newClient(t, newStack(t, cfg))
			tr.MaxBodyBytes = 1024
			for round := range 2 {
				resp, err := client.Get(srv.URL + "/file")
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				// Were the body tied to a context that ended, the
				// transport would close the connection meanwhile.
				time.Sleep(20 * time.Millisecond)
				got, err := io.ReadAll(resp.Body)
				require.NoError(t, err, "round %d", round)
				require.NoError(t, resp.Body.Close())
				assert.True(t, bytes.Equal(big, got), "round %d: %d bytes", round, len(got))
			}
			assert.Equal(t, 4, srv.count(), "503, 503, 200, then 200")
		})
	}
}

// recordingBase answers 503 then 200 and records the requests it got.
type recordingBase struct{ got []*http.Request }

func (b *recordingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.got = append(b.got, req)
	status := http.StatusOK
	if len(b.got) == 1 {
		status = http.StatusServiceUnavailable
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{},
		Body: io.NopCloser(bytes.NewReader([]byte("ok"))), ContentLength: 2, Request: req}, nil
}

// Each attempt's request: with the breaker's RequestTimeout, a copy on
// the call's deadline context; without one (and without a body), the
// caller's request itself, unchanged.
func TestAttemptRequests(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{
		{"RequestTimeout", 5 * time.Second},
		{"no RequestTimeout", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Breaker.RequestTimeout = tc.timeout
			base := &recordingBase{}
			tr := &bulwarkhttp.Transport{Base: base, Stack: newStack(t, cfg)}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://api.example/v1/pages/42", nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			require.Len(t, base.got, 2)
			if tc.timeout > 0 {
				// A buffered body holds nothing: the call's context
				// ended when RoundTrip returned.
				assert.ErrorIs(t, base.got[1].Context().Err(), context.Canceled, "released when RoundTrip returned")
			}
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Same(t, req, resp.Request)
			_, callerDeadline := req.Context().Deadline()
			assert.False(t, callerDeadline, "the caller's request is unchanged")
			for _, got := range base.got {
				d, ok := got.Context().Deadline()
				if tc.timeout > 0 {
					assert.NotSame(t, req, got)
					assert.True(t, ok)
					assert.WithinDuration(t, time.Now().Add(tc.timeout), d, time.Second)
				} else {
					assert.Same(t, req, got)
				}
			}
		})
	}
}
