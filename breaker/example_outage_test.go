package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
)

// stockClient reads a stock level from an HTTP service through a breaker,
// and answers from its last good value when the breaker refuses the call.
type stockClient struct {
	url      string
	breaker  *breaker.Breaker
	lastGood string
}

func (c *stockClient) stock(ctx context.Context) (string, error) {
	v, err := breaker.Do(ctx, c.breaker, func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("inventory: %s", resp.Status)
		}
		return strings.TrimSpace(string(body)), nil
	})
	switch {
	case err == nil:
		c.lastGood = v
		return v, nil
	case errors.Is(err, bulwark.ErrRejected) && c.lastGood != "":
		return c.lastGood + " (cached)", nil
	}
	return "", err
}

// A service goes down: after three failures the breaker stops calling it,
// and the client serves its last good value instead of waiting on a dead
// service.
func Example_outage() {
	var down atomic.Bool
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "42 in stock")
	}))
	defer srv.Close()

	b, err := breaker.New("inventory", breaker.Config{FailureThreshold: 3})
	if err != nil {
		panic(err)
	}
	client := &stockClient{url: srv.URL, breaker: b}
	ctx := context.Background()

	for i := 1; i <= 6; i++ {
		if i == 2 {
			down.Store(true)
		}
		v, err := client.stock(ctx)
		fmt.Printf("%d: %q %v [%v]\n", i, v, err, b.State())
	}
	st := b.Stats()
	fmt.Printf("service hit %d times; %d failures, %d rejections\n", hits.Load(), st.Failures, st.Rejections)
	// Output:
	// 1: "42 in stock" <nil> [CLOSED]
	// 2: "" inventory: 503 Service Unavailable [CLOSED]
	// 3: "" inventory: 503 Service Unavailable [CLOSED]
	// 4: "" inventory: 503 Service Unavailable [OPEN]
	// 5: "42 in stock (cached)" <nil> [OPEN]
	// 6: "42 in stock (cached)" <nil> [OPEN]
	// service hit 4 times; 3 failures, 2 rejections
}
