package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

// getJSON fetches url once. It is the operation retry repeats: transport
// errors are retried, and FromResponse turns error statuses into errors
// that retry understands (Retry-After honoured, 4xx not retried).
func getJSON(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", retry.Permanent(err) // a bad URL stays bad
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := retry.FromResponse(resp); err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// This example calls a rate-limited API. The server answers the first
// request with 503, the second with 429 and a Retry-After, and the third
// with the data. A second endpoint asks for a wait longer than the client
// accepts, and retry gives up at once instead of sleeping.
func Example_rateLimitedAPI() {
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/pages", func(w http.ResponseWriter, r *http.Request) {
		switch hits.Add(1) {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			// A real server would ask for seconds; "0" keeps the example instant.
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			fmt.Fprint(w, `{"pages":3}`)
		}
	})
	mux.HandleFunc("/export", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600") // come back in an hour
		w.WriteHeader(http.StatusTooManyRequests)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	r, err := retry.New(retry.Config{
		MaxAttempts: 5,
		NoWait:      true, // instant example; production code keeps the backoff
		OnEvent: func(e bulwark.Event) {
			if e.Kind == bulwark.RetryAttempt {
				fmt.Printf("attempt %d failed: %v\n", e.Attempt, e.Err)
			}
		},
	})
	if err != nil {
		panic(err)
	}

	ctx, report := bulwark.WithReport(context.Background())
	body, err := retry.Do(ctx, r, func(ctx context.Context) (string, error) {
		return getJSON(ctx, srv.Client(), srv.URL+"/pages")
	})
	fmt.Println(body, err, "after", report.Attempts(), "attempts")

	_, err = retry.Do(context.Background(), r, func(ctx context.Context) (string, error) {
		return getJSON(ctx, srv.Client(), srv.URL+"/export")
	})
	fmt.Println(errors.Is(err, retry.ErrRetryAfterTooLong))
	fmt.Println(err)
	// Output:
	// attempt 1 failed: retry: HTTP 503 Service Unavailable
	// attempt 2 failed: retry: HTTP 429 Too Many Requests
	// {"pages":3} <nil> after 3 attempts
	// true
	// retry: gave up after 1 attempt: Retry-After exceeds MaxRetryAfter (wait 1h0m0s); last error: retry: HTTP 429 Too Many Requests (Retry-After 1h0m0s)
}
