package bulwarkhttp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// A client whose requests go through a stack: a 503 is retried, and the
// caller sees only the final answer.
func Example() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"id":"42","title":"Roadmap"}`)
	}))
	defer srv.Close()

	cfg := pipeline.Reliable()
	cfg.Retry = &retry.Config{NoWait: true} // no backoff wait in an example
	stack, err := pipeline.New(cfg)
	if err != nil {
		panic(err)
	}
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := (&bulwarkhttp.Transport{Base: base, Stack: stack}).Client()

	ctx, report := bulwark.WithReport(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/pages/42", nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	fmt.Println("attempts:", report.Attempts(), "server calls:", calls.Load())
	// Output:
	// 200 {"id":"42","title":"Roadmap"}
	// attempts: 2 server calls: 2
}
