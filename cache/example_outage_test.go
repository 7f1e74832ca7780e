package cache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/cache"
)

// Page is what the fake wiki service returns.
type Page struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// fetchPage reads a page from the service at base, taking the page ID from
// the call's cache key.
func fetchPage(base string) bulwark.Func[Page] {
	return func(ctx context.Context) (Page, error) {
		id, _ := cache.KeyFrom[string](ctx)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/pages/"+id, nil)
		if err != nil {
			return Page{}, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return Page{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return Page{}, fmt.Errorf("wiki: %s", resp.Status)
		}
		var p Page
		err = json.NewDecoder(resp.Body).Decode(&p)
		return p, err
	}
}

// tripAfter stands in for a circuit breaker: after n consecutive failures
// it refuses every call with an error wrapping bulwark.ErrRejected.
func tripAfter(n int) bulwark.Middleware[Page] {
	var failures atomic.Int64
	return func(next bulwark.Func[Page]) bulwark.Func[Page] {
		return func(ctx context.Context) (Page, error) {
			if failures.Load() >= int64(n) {
				bulwark.ReportFrom(ctx).SetRejected()
				return Page{}, fmt.Errorf("circuit open: %w", bulwark.ErrRejected)
			}
			p, err := next(ctx)
			if err != nil {
				failures.Add(1)
			} else {
				failures.Store(0)
			}
			return p, err
		}
	}
}

// The wiki service goes down. Pages read before the outage are served from
// the fallback cache once the breaker stand-in rejects calls; genuine
// failures before that, and pages never read, return their errors.
func Example_outage() {
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/pages/")
		_ = json.NewEncoder(w).Encode(Page{ID: id, Title: "Page " + strings.ToUpper(id)})
	}))
	defer srv.Close()

	// One cache per service, shared by every result type of that service.
	c, err := cache.New[string, any](cache.Config{MaxEntries: 1000, TTL: time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	get := bulwark.Chain(
		cache.FallbackFunc[Page](c, cache.AttachedKey[string], cache.FallbackConfig{
			When:   cache.OnlyRejections,
			MaxAge: 10 * time.Minute,
			OnEvent: func(e bulwark.Event) {
				fmt.Printf("  (fallback: value %s old, instead of %q)\n", e.Duration.Round(time.Minute), e.Err)
			},
		}),
		tripAfter(2),
	)(fetchPage(srv.URL))

	read := func(id string) {
		ctx, report := bulwark.WithReport(cache.WithKey(context.Background(), id))
		p, err := get(ctx)
		switch {
		case err != nil:
			fmt.Printf("%s: error: %v\n", id, err)
		case report.FromCache():
			fmt.Printf("%s: %q (from cache)\n", id, p.Title)
		default:
			fmt.Printf("%s: %q\n", id, p.Title)
		}
	}

	read("a")
	read("b")
	down.Store(true)
	read("a") // a real failure: not a rejection, so not answered
	read("b") // second failure: the stand-in breaker trips
	read("a") // rejected: answered from the cache
	read("c") // rejected, and never cached
	// Output:
	// a: "Page A"
	// b: "Page B"
	// a: error: wiki: 503 Service Unavailable
	// b: error: wiki: 503 Service Unavailable
	//   (fallback: value 0s old, instead of "circuit open: bulwark: rejected")
	// a: "Page A" (from cache)
	// c: error: circuit open: bulwark: rejected
}
