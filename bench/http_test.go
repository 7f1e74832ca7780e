package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// HTTP rows. Every library sends a GET to a loopback server that answers
// 200 with a 1 KiB body, and the operation reads the body to its end and
// closes it. Each library gets an http.Transport of its own, configured
// alike (100 idle connections per host), so that connection reuse is the
// same everywhere:
//
//   - bulwark-no-timeout: the same with the breaker's RequestTimeout
//     off, for reference: what the Transport costs without a per-request
//     deadline (compare with stdlib, as bulwark compares with
//     stdlib-timeout);
//   - stdlib: the http.Transport alone, the cost every other column adds
//     to;
//   - stdlib-timeout: the same with http.Client.Timeout = 10s, for
//     reference: the per-request deadline alone (a context with a runtime
//     timer), which every other column but retryablehttp also pays;
//   - bulwark: bulwarkhttp.Transport over a Stack with a breaker (the
//     bench thresholds, 10s request timeout) and retry (3 attempts, the
//     production backoff); the body is read into memory inside the call
//     (MaxBodyBytes default), as the Transport always does for small
//     bodies;
//   - failsafe: failsafehttp.NewRoundTripper with its HTTP retry policy
//     (3 attempts, the same backoff), a circuit breaker with the same
//     thresholds and a 10s timeout;
//   - retryablehttp: hashicorp/go-retryablehttp's StandardClient, 2
//     retries with its default backoff; it has no circuit breaker.

// BenchmarkHTTPGet is one loopback GET at a time.
func BenchmarkHTTPGet(b *testing.B) { bench(b, httpGet) }

// BenchmarkHTTPGetParallel is loopback GETs from every goroutine through
// one shared client.
func BenchmarkHTTPGetParallel(b *testing.B) { bench(b, httpGetParallel) }

var (
	httpGet         = row{name: "HTTPGet", impls: httpImpls()}
	httpGetParallel = row{name: "HTTPGetParallel", parallel: true, impls: httpImpls()}
)

const httpBodySize = 1024

func httpImpls() []impl {
	return []impl{
		{"bulwark", func(tb testing.TB) func(context.Context) error {
			stack, err := pipeline.New(pipeline.Config{
				Breaker: &breaker.Config{
					FailureThreshold: failureThreshold,
					SuccessThreshold: successThreshold,
					ResetTimeout:     resetTimeout,
					RequestTimeout:   10 * time.Second,
				},
				Retry: &retry.Config{MaxAttempts: maxAttempts},
			})
			if err != nil {
				tb.Fatal(err)
			}
			tr := &bulwarkhttp.Transport{Base: newHTTPBase(tb), Stack: stack}
			return httpOp(tb, tr.Client())
		}},
		{"bulwark-no-timeout", func(tb testing.TB) func(context.Context) error {
			stack, err := pipeline.New(pipeline.Config{
				Breaker: &breaker.Config{
					FailureThreshold: failureThreshold,
					SuccessThreshold: successThreshold,
					ResetTimeout:     resetTimeout,
					RequestTimeout:   -1,
				},
				Retry: &retry.Config{MaxAttempts: maxAttempts},
			})
			if err != nil {
				tb.Fatal(err)
			}
			tr := &bulwarkhttp.Transport{Base: newHTTPBase(tb), Stack: stack}
			return httpOp(tb, tr.Client())
		}},
		{"stdlib", func(tb testing.TB) func(context.Context) error {
			return httpOp(tb, &http.Client{Transport: newHTTPBase(tb)})
		}},
		{"stdlib-timeout", func(tb testing.TB) func(context.Context) error {
			return httpOp(tb, &http.Client{Transport: newHTTPBase(tb), Timeout: 10 * time.Second})
		}},
		{"failsafe", func(tb testing.TB) func(context.Context) error {
			rp := failsafehttp.NewRetryPolicyBuilder().
				WithMaxAttempts(maxAttempts).
				WithBackoffFactor(500*time.Millisecond, 60*time.Second, 1.5).
				WithJitterFactor(0.5).
				Build()
			cb := circuitbreaker.NewBuilder[*http.Response]().
				WithFailureThreshold(failureThreshold).
				WithSuccessThreshold(successThreshold).
				WithDelay(resetTimeout).
				HandleIf(func(resp *http.Response, err error) bool {
					return err != nil || (resp != nil && resp.StatusCode >= 500)
				}).
				Build()
			rt := failsafehttp.NewRoundTripper(newHTTPBase(tb), cb, timeout.New[*http.Response](10*time.Second), rp)
			return httpOp(tb, &http.Client{Transport: rt})
		}},
		{"retryablehttp", func(tb testing.TB) func(context.Context) error {
			c := retryablehttp.NewClient()
			c.HTTPClient = &http.Client{Transport: newHTTPBase(tb)}
			c.Logger = nil
			c.RetryMax = maxAttempts - 1
			return httpOp(tb, c.StandardClient())
		}},
	}
}

// newHTTPBase returns a loopback-ready http.Transport, closed with tb.
func newHTTPBase(tb testing.TB) *http.Transport {
	t := &http.Transport{MaxIdleConns: 100, MaxIdleConnsPerHost: 100, IdleConnTimeout: 90 * time.Second}
	tb.Cleanup(t.CloseIdleConnections)
	return t
}

// httpOp starts the loopback server and returns the operation: one GET
// through client, its body read and checked.
func httpOp(tb testing.TB, client *http.Client) func(context.Context) error {
	body := strings.Repeat("x", httpBodySize)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body)
	}))
	tb.Cleanup(srv.Close)
	url := srv.URL + "/v1/pages/42"
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || n != httpBodySize {
			return fmt.Errorf("got status %d, %d bytes, error %v; want 200, %d bytes", resp.StatusCode, n, err, httpBodySize)
		}
		return nil
	}
}
