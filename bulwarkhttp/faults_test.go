package bulwarkhttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

const fullBody = "the whole body"

// answerFully writes a complete 200 response with fullBody.
func answerFully(c net.Conn) {
	_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(fullBody), fullBody)
}

// reset closes c with a TCP RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// A GET whose body breaks off (a connection reset, or a close before
// Content-Length bytes) is retried, and the caller gets the whole body of
// the next attempt.
func TestBrokenBodyOnAGetIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(net.Conn)
	}{
		{"connection reset mid-body", reset},
		{"truncated body", func(c net.Conn) { _ = c.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(i int, c net.Conn) {
				if readRequest(c) != nil {
					return
				}
				if i > 0 {
					answerFully(c)
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 100))
				time.Sleep(10 * time.Millisecond) // let the client read the head
				tc.cut(c)
			})
			client, _ := newClient(t, newStack(t, testConfig()))
			resp, err := client.Get(srv.url() + "/doc")
			require.NoError(t, err)
			assert.Equal(t, fullBody, readAll(t, resp))
			assert.Equal(t, int32(2), srv.accepted.Load())
		})
	}
}

// A server that sends no head, or trickles its body, is cut off by the
// breaker's RequestTimeout, and no connection or goroutine is left.
func TestSlowServersAreCutOffByTheRequestTimeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
	}{
		{"slow headers", func(c net.Conn) {}},
		{"slow body", func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
			for range 100 {
				if _, err := io.WriteString(c, "x"); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			srv := newRawServer(t, func(_ int, c net.Conn) {
				if readRequest(c) != nil {
					return
				}
				tc.serve(c)
				_, _ = io.Copy(io.Discard, c) // until the client hangs up
			})
			cfg := testConfig()
			cfg.Breaker.RequestTimeout = 200 * time.Millisecond
			stack := newStack(t, cfg)
			client, _ := newClient(t, stack)
			start := time.Now()
			_, err := client.Get(srv.url())
			elapsed := time.Since(start)
			require.ErrorIs(t, err, breaker.ErrTimeout)
			assert.Less(t, elapsed, 2*time.Second)
			assert.GreaterOrEqual(t, elapsed, 200*time.Millisecond)
			st := stack.Breaker(srv.ln.Addr().String()).Stats()
			assert.Equal(t, int64(1), st.Failures, "counted")
			assert.Equal(t, int64(1), st.Timeouts, "counted as the breaker's own timeout")
			assert.Eventually(t, func() bool { return srv.open.Load() == 0 }, 2*time.Second, 5*time.Millisecond, "the client hung up")
			client.CloseIdleConnections()
			srv.close()
			goleak.VerifyNone(t, ignore)
		})
	}
}

// The caller cancels while the body arrives: the call returns within
// 50 ms, and no goroutine or connection is left. Both while RoundTrip
// reads the body and while the caller reads a streamed one.
func TestCallerCancelsMidBody(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int64
	}{
		{"inside RoundTrip", 0},
		{"reading a streamed body", 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			srv := newRawServer(t, func(_ int, c net.Conn) {
				if readRequest(c) != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 4096))
				_, _ = io.Copy(io.Discard, c) // stall until the client hangs up
			})
			stack := newStack(t, testConfig())
			client, tr := newClient(t, stack)
			tr.MaxBodyBytes = tc.limit
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url(), nil)

			var cancelled time.Time
			timer := time.AfterFunc(100*time.Millisecond, func() { cancelled = time.Now(); cancel() })
			defer timer.Stop()
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			returned := time.Now()
			require.ErrorIs(t, err, context.Canceled)
			require.False(t, cancelled.IsZero())
			assert.Less(t, returned.Sub(cancelled), 50*time.Millisecond)
			assert.Equal(t, int32(1), srv.accepted.Load(), "not retried")
			assert.Zero(t, stack.Breaker(srv.ln.Addr().String()).Stats().Failures, "not counted")
			assert.Eventually(t, func() bool { return srv.open.Load() == 0 }, 2*time.Second, 5*time.Millisecond, "the connection is closed")
			client.CloseIdleConnections()
			srv.close()
			goleak.VerifyNone(t, ignore)
		})
	}
}

// Retry-After in seconds and as an HTTP-date drives the wait: the server
// sees the gaps it asked for.
func TestRetryAfterDrivesTheWait(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 3 s of real time (real sockets cannot run in a synctest bubble)")
	}
	srv := newServer(t, func(i int, w http.ResponseWriter, _ *http.Request) {
		switch i {
		case 0:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 1:
			now := time.Now().UTC()
			w.Header().Set("Date", now.Format(http.TimeFormat))
			w.Header().Set("Retry-After", now.Add(2*time.Second).Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			_, _ = io.WriteString(w, "done")
		}
	})
	client, _ := newClient(t, newStack(t, testConfig()))
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "done", readAll(t, resp))
	seen := srv.requests()
	require.Len(t, seen, 3)
	first, second := seen[1].At.Sub(seen[0].At), seen[2].At.Sub(seen[1].At)
	assert.GreaterOrEqual(t, first, time.Second)
	assert.Less(t, first, 2500*time.Millisecond)
	assert.GreaterOrEqual(t, second, 2*time.Second)
	assert.Less(t, second, 3500*time.Millisecond)
}

// A Retry-After beyond the retry layer's MaxRetryAfter is not waited
// for: the caller gets the 429 at once.
func TestRetryAfterBeyondTheCapReturnsTheResponse(t *testing.T) {
	srv := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, "slow down")
	})
	cfg := testConfig()
	cfg.Retry.MaxRetryAfter = time.Minute
	client, _ := newClient(t, newStack(t, cfg))
	start := time.Now()
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "3600", resp.Header.Get("Retry-After"))
	assert.Equal(t, "slow down", readAll(t, resp))
	assert.Equal(t, 1, srv.count())
}

// A network error that retries do not overcome is an error, counted by
// the breaker; the caller's cancellation before sending is neither
// retried nor counted.
func TestNetworkErrors(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn) { _ = readRequest(c); reset(c) })
	stack := newStack(t, testConfig())
	client, _ := newClient(t, stack)
	_, err := client.Get(srv.url())
	require.Error(t, err)
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 3, re.Attempts)
	assert.Equal(t, int32(3), srv.accepted.Load())
	assert.Equal(t, int64(1), stack.Breaker(srv.ln.Addr().String()).Stats().Failures)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url(), nil)
	_, err = client.Do(req)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, errors.Is(err, pipeline.ErrInvalid))
	assert.Equal(t, int64(1), stack.Breaker(srv.ln.Addr().String()).Stats().Failures, "not counted")
}

// A streamed body outlives the call through the layers, but not its
// request timeout: a stalled stream ends with breaker.ErrTimeout.
func TestStreamedBodyEndsAtTheRequestTimeout(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	srv := newRawServer(t, func(_ int, c net.Conn) {
		if readRequest(c) != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 4096))
		_, _ = io.Copy(io.Discard, c)
	})
	cfg := testConfig()
	cfg.Breaker.RequestTimeout = 300 * time.Millisecond
	client, tr := newClient(t, newStack(t, cfg))
	tr.MaxBodyBytes = 1024
	start := time.Now()
	resp, err := client.Get(srv.url())
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	elapsed := time.Since(start)
	require.NoError(t, resp.Body.Close())
	assert.Len(t, got, 4096, "what arrived was readable after the call returned")
	require.ErrorIs(t, err, breaker.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
	assert.Less(t, elapsed, 2*time.Second)
	assert.Eventually(t, func() bool { return srv.open.Load() == 0 }, 2*time.Second, 5*time.Millisecond)
	client.CloseIdleConnections()
	srv.close()
	goleak.VerifyNone(t, ignore)
}
