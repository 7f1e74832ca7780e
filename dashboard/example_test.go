package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/dashboard"
	"github.com/bulwark-go/bulwark/pipeline"
)

func Example() {
	stack, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{FailureThreshold: 2}})
	if err != nil {
		panic(err)
	}
	d, err := dashboard.Handler(stack)
	if err != nil {
		panic(err)
	}
	defer d.Close()

	// Serve it under /status/ next to the application's own routes.
	mux := http.NewServeMux()
	mux.Handle("/status/", http.StripPrefix("/status", d))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// The payments service goes down: two failures open its circuit.
	down := func(context.Context) (string, error) { return "", errors.New("503 Service Unavailable") }
	for range 3 {
		pipeline.Do(context.Background(), stack, "payments", down)
	}

	res, err := http.Get(srv.URL + "/status/snapshot.json")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	var snap dashboard.Snapshot
	if err := json.NewDecoder(res.Body).Decode(&snap); err != nil {
		panic(err)
	}
	for _, ex := range snap.Executors {
		fmt.Printf("%s: %s, %d calls, %d failures, %d rejected\n", ex.Name, ex.State, ex.Calls, ex.Failures, ex.Rejections)
	}
	fmt.Println("latest event:", snap.Events[0].Kind, snap.Events[0].Summary)
	// Output:
	// payments: OPEN, 3 calls, 2 failures, 1 rejected
	// latest event: request:rejected breaker payments: circuit open
}
