// Command httpclient is a typed client for a Notion-like API that sends
// every request through a bulwarkhttp.Transport, against a loopback server
// that injects faults. For each request it prints what the server saw and
// what each layer did: the retries and their waits, the idempotent replay,
// the circuit opening, the fallback copy and its age.
//
// Run it with: go run ./examples/httpclient
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "httpclient:", err)
		os.Exit(1)
	}
}

// Page is the API's page resource.
type Page struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// APIError is a status the API answered with, other than a success.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string { return fmt.Sprintf("notion: %d %s", e.Status, e.Body) }

// Notion is a typed client of the API. Its http.Client sends every request
// through a bulwarkhttp.Transport; the client itself knows nothing of
// retries, circuits or caches.
type Notion struct {
	http *http.Client
	base string
}

// GetPage fetches a page.
func (n *Notion) GetPage(ctx context.Context, id string) (Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.base+"/v1/pages/"+id, nil)
	if err != nil {
		return Page{}, err
	}
	var p Page
	return p, n.do(req, &p)
}

// CreatePage creates a page. key makes the request idempotent: it may be
// retried, and a duplicate returns the first one's page.
func (n *Notion) CreatePage(ctx context.Context, key, title string) (Page, error) {
	body, _ := json.Marshal(Page{Title: title})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.base+"/v1/pages", bytes.NewReader(body))
	if err != nil {
		return Page{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	var p Page
	return p, n.do(req, &p)
}

// AppendComment adds a comment: a POST without a key, sent once.
func (n *Notion) AppendComment(ctx context.Context, pageID, text string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.base+"/v1/comments", strings.NewReader(`{"page":"`+pageID+`","text":"`+text+`"}`))
	if err != nil {
		return err
	}
	return n.do(req, nil)
}

func (n *Notion) do(req *http.Request, out any) error {
	resp, err := n.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return &APIError{Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// faultyAPI is the loopback Notion-like server. Each request takes the
// next fault queued for its route, if any; without one it answers
// normally. down makes every request fail with 503.
type faultyAPI struct {
	mu     sync.Mutex
	log    func(string)
	faults map[string][]fault
	pages  map[string]Page
	down   bool
	n      int
}

type fault struct {
	status     int
	retryAfter string
	cut        bool // send half the body, then hang up
}

func (a *faultyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	route := r.Method + " " + r.URL.Path
	a.mu.Lock()
	f, faulty := fault{}, false
	if q := a.faults[route]; len(q) > 0 {
		f, faulty, a.faults[route] = q[0], true, q[1:]
	}
	if a.down {
		f, faulty = fault{status: http.StatusServiceUnavailable}, true
	}
	a.mu.Unlock()

	line := "server: " + route
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		line += " (Idempotency-Key " + k + ", body " + string(body) + ")"
	}
	switch {
	case faulty && f.cut:
		a.log(line + " → 200, connection cut mid-body")
		w.Header().Set("Content-Length", "64")
		_, _ = io.WriteString(w, `{"id":"4`)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = c.Close()
		}
		return
	case faulty:
		extra := ""
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
			extra = ", Retry-After " + f.retryAfter
		}
		a.log(fmt.Sprintf("%s → %d%s", line, f.status, extra))
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, http.StatusText(f.status))
		return
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/pages/"):
		p, ok := a.pages[strings.TrimPrefix(r.URL.Path, "/v1/pages/")]
		if !ok {
			a.log(line + " → 404")
			http.Error(w, "page not found", http.StatusNotFound)
			return
		}
		a.log(line + " → 200")
		_ = json.NewEncoder(w).Encode(p)
	case route == "POST /v1/pages":
		var p Page
		_ = json.Unmarshal(body, &p)
		a.n++
		p.ID = fmt.Sprintf("page-%d", a.n)
		a.pages[p.ID] = p
		a.log(line + " → 201 " + p.ID)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(p)
	default:
		a.log(line + " → 204")
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *faultyAPI) inject(route string, fs ...fault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults[route] = append(a.faults[route], fs...)
}

func (a *faultyAPI) setDown(down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.down = down
}

func run(w io.Writer) error {
	var mu sync.Mutex
	printf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, format, args...)
	}
	api := &faultyAPI{
		log:    func(s string) { printf("   %s\n", s) },
		faults: map[string][]fault{},
		pages:  map[string]Page{"42": {ID: "42", Title: "Roadmap"}},
	}
	srv := httptest.NewServer(api)
	defer srv.Close()

	stack, err := pipeline.New(pipeline.Config{
		Idempotency: &pipeline.IdempotencyConfig{},
		Fallback:    &pipeline.FallbackConfig{FallbackConfig: cache.FallbackConfig{MaxAge: time.Minute}},
		Breaker:     &breaker.Config{FailureThreshold: 2, ResetTimeout: time.Minute, RequestTimeout: 5 * time.Second},
		Retry:       &retry.Config{MaxAttempts: 3, InitialInterval: 20 * time.Millisecond, Multiplier: 2, NoJitter: true},
	})
	if err != nil {
		return err
	}
	defer stack.Subscribe(func(e bulwark.Event) {
		switch e.Kind {
		case bulwark.RetryAttempt:
			printf("   %-20s attempt %d failed (%v); next attempt in %v\n", e.Kind, e.Attempt, e.Err, e.Duration)
		case bulwark.RetryExhausted:
			printf("   %-20s gave up after %s\n", e.Kind, plural(e.Attempt, "attempt"))
		case bulwark.CircuitOpened, bulwark.RequestRejected, bulwark.IdempotencyReplayed, bulwark.FallbackUsed:
			printf("   %s\n", e.Kind)
		}
	})()

	base := &http.Transport{}
	defer base.CloseIdleConnections()
	tr := &bulwarkhttp.Transport{
		Base:     base,
		Stack:    stack,
		Executor: func(*http.Request) string { return "notion" },
	}
	notion := &Notion{http: tr.Client(), base: srv.URL}

	// call runs one client call with a Report on its context, and prints
	// what the layers did.
	call := func(title string, fn func(ctx context.Context) (string, error)) {
		printf("\n%s\n", title)
		ctx, report := bulwark.WithReport(context.Background())
		got, err := fn(ctx)
		var what []string
		what = append(what, fmt.Sprintf("attempts %d", report.Attempts()))
		if report.Replayed() {
			what = append(what, "replayed")
		}
		if report.FromCache() {
			what = append(what, "from the fallback")
		}
		if report.Rejected() {
			what = append(what, "rejected")
		}
		what = append(what, "circuit "+stack.Breaker("notion").State().String())
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, whose port changes from run to run
		}
		if err != nil {
			got = "error: " + err.Error()
		}
		printf("   → %s [%s]\n", got, strings.Join(what, ", "))
	}
	getPage := func(id string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			p, err := notion.GetPage(ctx, id)
			return fmt.Sprintf("page %s %q", p.ID, p.Title), err
		}
	}
	createPage := func(key, title string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			p, err := notion.CreatePage(ctx, key, title)
			return fmt.Sprintf("created %s %q", p.ID, p.Title), err
		}
	}

	api.inject("GET /v1/pages/42", fault{status: 503}, fault{status: 429, retryAfter: "0"})
	call("1. GET a page: 503, then 429, then 200. GET is safe to retry.", getPage("42"))

	api.inject("GET /v1/pages/42", fault{cut: true})
	call("2. GET again: the connection is cut mid-body; the body is read inside the attempt, so the attempt is retried.", getPage("42"))

	call("3. GET a page that does not exist: 404 is the service's final answer: not retried, not counted.", getPage("7"))

	api.inject("POST /v1/pages", fault{status: 502})
	call("4. POST with an Idempotency-Key: 502, then 201. The key makes the POST safe to retry; the body is sent in full each time.",
		createPage("create-q3-plan", "Q3 plan"))
	call("5. The same POST again (a double click): replayed from the idempotency layer, no request.",
		createPage("create-q3-plan", "Q3 plan"))

	api.inject("POST /v1/comments", fault{status: 503})
	call("6. POST without a key: 503. Not safe to repeat, so it is sent once and the caller gets the 503.",
		func(ctx context.Context) (string, error) {
			return "comment added", notion.AppendComment(ctx, "42", "hi")
		})

	api.setDown(true)
	call("7. The API goes down. GET page 42: three 503s, the second failed call in a row (after 6), which opens the circuit;\n   the caller gets the copy kept from request 2, with its age.",
		func(ctx context.Context) (string, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/pages/42", nil)
			resp, err := notion.http.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d %s, %s: %s", resp.StatusCode, strings.TrimSpace(string(body)),
				bulwarkhttp.HeaderFallbackAge, resp.Header.Get(bulwarkhttp.HeaderFallbackAge)), nil
		})

	call("8. The circuit is open: a GET is answered from the copy without a request...", getPage("42"))
	call("   ...and a POST is refused at once, without a request.", createPage("create-q4-plan", "Q4 plan"))
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
