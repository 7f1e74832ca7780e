package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

func response(code int, header ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{StatusCode: code, Status: "", Header: h}
}

func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	return ra.RetryAfter()
}

func TestFromResponseSuccessIsNil(t *testing.T) {
	assert.NoError(t, retry.FromResponse(nil))
	for _, code := range []int{200, 201, 204, 301, 304, 399} {
		assert.NoError(t, retry.FromResponse(response(code, "Retry-After", "5")), "status %d", code)
	}
}

func TestFromResponseRetryAfterSeconds(t *testing.T) {
	for _, code := range []int{429, 503} {
		err := retry.FromResponse(response(code, "Retry-After", "120"))
		require.Error(t, err)
		assert.Equal(t, 2*time.Minute, retryAfter(t, err), "status %d", code)
		var he *retry.HTTPError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, code, he.StatusCode)
	}
}

func TestFromResponseIgnoresRetryAfterOnOtherStatuses(t *testing.T) {
	err := retry.FromResponse(response(500, "Retry-After", "120"))
	assert.Zero(t, retryAfter(t, err))
}

func TestFromResponseRetryAfterDate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		// Relative to now when the response has no Date.
		err := retry.FromResponse(response(503, "Retry-After", now.Add(90*time.Second).UTC().Format(http.TimeFormat)))
		assert.Equal(t, 90*time.Second, retryAfter(t, err))

		// Relative to the server's Date when present: the server's clock is
		// an hour ahead of ours, and it asks for 30 seconds.
		server := now.Add(time.Hour)
		err = retry.FromResponse(response(429,
			"Date", server.UTC().Format(http.TimeFormat),
			"Retry-After", server.Add(30*time.Second).UTC().Format(http.TimeFormat)))
		assert.Equal(t, 30*time.Second, retryAfter(t, err))

		// The obsolete forms RFC 9110 requires recipients to accept.
		for _, layout := range []string{time.RFC850, time.ANSIC} {
			err = retry.FromResponse(response(503, "Retry-After", now.Add(time.Minute).UTC().Format(layout)))
			assert.Equal(t, time.Minute, retryAfter(t, err), layout)
		}

		// A date in the past asks for no wait.
		err = retry.FromResponse(response(503, "Retry-After", now.Add(-time.Minute).UTC().Format(http.TimeFormat)))
		assert.Zero(t, retryAfter(t, err))
	})
}

func TestFromResponseMalformedRetryAfter(t *testing.T) {
	for _, v := range []string{" \t", "soon", "-5", "+5", "1.5", "5s", "12 34", "Mon, 99 Foo 2024 00:00:00 GMT"} {
		err := retry.FromResponse(response(503, "Retry-After", v))
		require.Error(t, err, v)
		assert.Zero(t, retryAfter(t, err), "%q is ignored", v)
	}
}

func TestFromResponseHugeRetryAfterIsRefused(t *testing.T) {
	err := retry.FromResponse(response(429, "Retry-After", "99999999999999999999999"))
	assert.Greater(t, retryAfter(t, err), 100*365*24*time.Hour, "an overflowing delay is a very long one, not a short one")
}

func TestFromResponseClassification(t *testing.T) {
	for code, retryable := range map[int]bool{
		400: false, 401: false, 403: false, 404: false, 409: false, 422: false,
		408: true, 425: true, 429: true,
		500: true, 502: true, 503: true, 504: true, 507: true,
		501: false, 505: false,
	} {
		err := retry.FromResponse(response(code))
		var he *retry.HTTPError
		require.ErrorAs(t, err, &he, "status %d", code)
		assert.Equal(t, code, he.StatusCode)

		r := mustNew(t, retry.Config{NoWait: true})
		calls := 0
		_, got := retry.Do(context.Background(), r, func(context.Context) (int, error) {
			calls++
			return 0, retry.FromResponse(response(code))
		})
		if retryable {
			assert.Equal(t, 3, calls, "status %d is retried", code)
			assert.ErrorIs(t, got, retry.ErrExhausted)
		} else {
			assert.Equal(t, 1, calls, "status %d is not retried", code)
			require.ErrorAs(t, got, &he)
			assert.Equal(t, code, he.StatusCode)
		}
		// The 4xx that are not retried are the service's final answer;
		// 501 and 505 are permanent but count as the service's failure.
		assert.Equal(t, !retryable && code < 500, bulwark.IsFinal(err), "status %d final", code)
		assert.Equal(t, !retryable && code < 500, bulwark.IsFinal(got), "status %d final after Do", code)
	}
}

// The default predicate on each kind of error.
func TestDefaultIsRetryable(t *testing.T) {
	assert.True(t, retry.DefaultIsRetryable(errors.New("503")))
	assert.False(t, retry.DefaultIsRetryable(bulwark.Final(errors.New("card declined"))))
	assert.False(t, retry.DefaultIsRetryable(fmt.Errorf("charge: %w", bulwark.Final(errors.New("card declined")))))
	// Do never asks about rejections or cancellations, but the predicate
	// itself has no opinion on them.
	assert.True(t, retry.DefaultIsRetryable(bulwark.ErrRejected))
	assert.True(t, retry.DefaultIsRetryable(context.Canceled))
}

// Through Do: a final answer, a rejection and a caller's cancellation run
// once; a plain error runs MaxAttempts times.
func TestDoDefaultPredicate(t *testing.T) {
	r := mustNew(t, retry.Config{NoWait: true})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name  string
		ctx   context.Context
		err   error
		calls int
	}{
		{"plain", context.Background(), errors.New("503"), 3},
		{"final", context.Background(), bulwark.Final(errors.New("404")), 1},
		{"rejection", context.Background(), fmt.Errorf("open: %w", bulwark.ErrRejected), 1},
		{"caller cancelled", cancelled, errors.New("EOF"), 1},
	}
	for _, c := range cases {
		calls := 0
		_, err := retry.Do(c.ctx, r, func(context.Context) (int, error) { calls++; return 0, c.err })
		assert.ErrorIs(t, err, c.err, c.name)
		assert.Equal(t, c.calls, calls, c.name)
	}
}

func TestHTTPErrorMessage(t *testing.T) {
	assert.EqualError(t, &retry.HTTPError{StatusCode: 503, Status: "503 Service Unavailable", Wait: 2 * time.Second},
		"retry: HTTP 503 Service Unavailable (Retry-After 2s)")
	assert.EqualError(t, &retry.HTTPError{StatusCode: 404}, "retry: HTTP 404 Not Found")
}

func TestDoHonoursRetryAfterFromResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{NoJitter: true}) // backoff would wait 500ms
		for name, header := range map[string]func() string{
			"seconds":   func() string { return "7" },
			"HTTP-date": func() string { return time.Now().Add(7 * time.Second).UTC().Format(http.TimeFormat) },
		} {
			var starts []time.Time
			v, err := retry.Do(context.Background(), r, func(context.Context) (string, error) {
				starts = append(starts, time.Now())
				if len(starts) == 1 {
					return "", retry.FromResponse(response(429, "Retry-After", header()))
				}
				return "ok", nil
			})
			require.NoError(t, err, name)
			assert.Equal(t, "ok", v)
			require.Len(t, starts, 2)
			assert.GreaterOrEqual(t, starts[1].Sub(starts[0]), 7*time.Second, name)
		}
	})
}

func TestDoMalformedRetryAfterFallsBackToBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{NoJitter: true})
		var starts []time.Time
		_, err := retry.Do(context.Background(), r, func(context.Context) (int, error) {
			starts = append(starts, time.Now())
			if len(starts) == 1 {
				return 0, retry.FromResponse(response(503, "Retry-After", "in a while"))
			}
			return 1, nil
		})
		require.NoError(t, err)
		assert.Equal(t, 500*time.Millisecond, starts[1].Sub(starts[0]))
	})
}

func TestDoRetryAfterFromResponseBeyondLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, retry.Config{MaxRetryAfter: time.Minute})
		fn := func(context.Context) (int, error) {
			return 0, retry.FromResponse(response(429, "Retry-After", "3600"))
		}
		start := time.Now()
		_, err := retry.Do(context.Background(), r, fn)
		assert.ErrorIs(t, err, retry.ErrRetryAfterTooLong)
		assert.Zero(t, time.Since(start))
		var he *retry.HTTPError
		assert.ErrorAs(t, err, &he, "the last error, the response's, is reachable")

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		fn = func(context.Context) (int, error) {
			return 0, retry.FromResponse(response(503, "Retry-After", "30"))
		}
		_, err = retry.Do(ctx, r, fn)
		assert.ErrorIs(t, err, retry.ErrDeadline)
		assert.Zero(t, time.Since(start))
	})
}

// A real HTTP round trip, outside synctest: the server rate-limits the
// first request with "Retry-After: 0" and serves the second.
func TestFromResponseOverHTTP(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits++
		if hits == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte("hello"))
	}))
	defer srv.Close()

	r := mustNew(t, retry.Config{NoWait: true})
	var firstErr error
	body, err := retry.Do(context.Background(), r, func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return "", retry.Permanent(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if err := retry.FromResponse(resp); err != nil {
			firstErr = err
			return "", err
		}
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	})
	require.NoError(t, err)
	assert.Equal(t, "hello", body)
	assert.Equal(t, 2, hits)
	var he *retry.HTTPError
	require.True(t, errors.As(firstErr, &he))
	assert.Equal(t, "429 Too Many Requests", he.Status)
}
