// Command retry shows how retry and the circuit breaker fit together in a
// bulwark stack, where the breaker sits outside retry:
//
//  1. one logical call counts once against the circuit, however many
//     attempts retry made;
//  2. a call the open circuit rejects is never retried;
//  3. a rate-limited service's Retry-After is honoured (an in-memory HTTP
//     service answers 429 with Retry-After, read by retry.FromResponse);
//  4. an HTTP error that repeating cannot fix (404) is not retried.
//
// Run it with `go run ./examples/retry`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "retry:", err)
		os.Exit(1)
	}
}

// trello is an in-memory fake of Trello's REST API: the first request for
// the cards is rate limited, later ones succeed; unknown boards are 404.
type trello struct {
	w     io.Writer
	start time.Time

	mu       sync.Mutex
	requests int
}

func (t *trello) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	t.requests++
	n := t.requests
	t.mu.Unlock()
	at := fmt.Sprintf("%.2fs", time.Since(t.start).Seconds())
	switch {
	case r.URL.Path != "/1/boards/sprint-7/cards":
		http.NotFound(w, r)
		fmt.Fprintf(t.w, "   %s  trello: GET %s → 404 Not Found\n", at, r.URL.Path)
	case n == 1:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(t.w, "   %s  trello: GET %s → 429 Too Many Requests, Retry-After: 1\n", at, r.URL.Path)
	default:
		fmt.Fprint(w, `3 cards`)
		fmt.Fprintf(t.w, "   %s  trello: GET %s → 200 OK\n", at, r.URL.Path)
	}
}

// inMemory is an http.RoundTripper that serves requests with a handler,
// without a network: the fake's responses are real *http.Response values.
type inMemory struct{ h http.Handler }

func (t inMemory) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// getCards fetches a board's cards, turning an error status into an error
// retry understands (with the server's Retry-After, if any).
func getCards(client *http.Client, board string) bulwark.Func[string] {
	return func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://trello.invalid/1/boards/"+board+"/cards", nil)
		if err != nil {
			return "", retry.Permanent(err)
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
}

func run(w io.Writer) error {
	stack, err := pipeline.New(pipeline.Config{
		Breaker: &breaker.Config{FailureThreshold: 2},
		Retry:   &retry.Config{MaxAttempts: 4, InitialInterval: 50 * time.Millisecond, NoJitter: true},
	})
	if err != nil {
		return err
	}
	defer stack.Subscribe(func(e bulwark.Event) {
		switch e.Kind {
		case bulwark.RetryAttempt:
			fmt.Fprintf(w, "   %-16s attempt %d failed (%v); next attempt in %v\n", e.Kind, e.Attempt, e.Err, e.Duration)
		case bulwark.RetryExhausted:
			fmt.Fprintf(w, "   %-16s gave up after %d attempts\n", e.Kind, e.Attempt)
		case bulwark.RequestFailure:
			fmt.Fprintf(w, "   %-16s the breaker counts the logical call once\n", e.Kind)
		case bulwark.RequestSuccess, bulwark.RequestRejected, bulwark.CircuitOpened:
			fmt.Fprintf(w, "   %s\n", e.Kind)
		}
	})()
	ctx := context.Background()

	fmt.Fprintln(w, "1. notion is down. Its circuit opens after 2 failed calls; retry makes up to 4 attempts per call.")
	notionAttempts := 0
	notion := func(context.Context) (string, error) {
		notionAttempts++
		return "", errors.New("notion: 503 Service Unavailable")
	}
	for call := 1; call <= 2; call++ {
		fmt.Fprintf(w, "   call %d:\n", call)
		r := pipeline.Execute(ctx, stack, "notion", notion)
		st := stack.Breaker("notion").Stats()
		fmt.Fprintf(w, "   → attempts %d; breaker: calls %d, failures %d, %v\n", r.Attempts, st.Total, st.Failures, st.State)
	}
	fmt.Fprintf(w, "   %d attempts reached notion; the circuit counted 2 failures.\n", notionAttempts)

	fmt.Fprintln(w, "\n2. A rejection is never retried: the open circuit refuses the call before retry runs.")
	r := pipeline.Execute(ctx, stack, "notion", notion)
	fmt.Fprintf(w, "   → attempts %d, rejected %v, err %q, errors.Is(err, bulwark.ErrRejected) = %v\n",
		r.Attempts, r.Rejected, r.Err, errors.Is(r.Err, bulwark.ErrRejected))
	if r.Attempts != 0 || !r.Rejected {
		return fmt.Errorf("the rejected call ran: %+v", r)
	}

	fmt.Fprintln(w, "\n3. trello rate-limits: a 429 with Retry-After: 1 makes retry wait 1s (its own backoff would wait 50ms).")
	start := time.Now()
	client := &http.Client{Transport: inMemory{&trello{w: w, start: start}}}
	cards := pipeline.Execute(ctx, stack, "trello", getCards(client, "sprint-7"))
	fmt.Fprintf(w, "   → %q after %d attempts, %.2fs\n", cards.Value, cards.Attempts, cards.Duration.Seconds())
	if cards.Err != nil {
		return cards.Err
	}

	fmt.Fprintln(w, "\n4. A 404 is permanent: retry.FromResponse marks it so, and it is not retried.")
	missing := pipeline.Execute(ctx, stack, "trello", getCards(client, "no-such-board"))
	fmt.Fprintf(w, "   → attempts %d, err %q\n", missing.Attempts, missing.Err)
	return nil
}
