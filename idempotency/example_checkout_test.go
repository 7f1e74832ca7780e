package idempotency_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/bulwark-go/bulwark/idempotency"
)

// A checkout service charges cards through a payment provider. Its
// clients send an Idempotency-Key header and retry when a response is
// lost; whatever the number of retries, the card is charged once, and the
// retries get the first charge's receipt.
func Example_checkout() {
	// The payment provider: every call it receives charges a card.
	var charges atomic.Int32
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ch_%d", charges.Add(1))
	}))
	defer provider.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	charge := func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, provider.URL, nil)
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		receipt, err := io.ReadAll(resp.Body)
		return string(receipt), err
	}

	// The checkout service.
	m, err := idempotency.New(nil, idempotency.Config{})
	if err != nil {
		panic(err)
	}
	checkout := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Namespaced: the same client key for another operation is
		// another key.
		key, err := idempotency.Key("checkout", "charge", r.Header.Get("Idempotency-Key"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res := idempotency.Execute(r.Context(), m, key, "", charge)
		if res.Err != nil {
			http.Error(w, res.Err.Error(), http.StatusBadGateway)
			return
		}
		if res.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		fmt.Fprint(w, res.Value)
	}))
	defer checkout.Close()

	// A client that sends the same request three times.
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, checkout.URL, nil)
		req.Header.Set("Idempotency-Key", "order-1001")
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		receipt, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s replayed=%q\n", receipt, resp.Header.Get("Idempotent-Replayed"))
	}
	fmt.Println("cards charged:", charges.Load())
	// Output:
	// ch_1 replayed=""
	// ch_1 replayed="true"
	// ch_1 replayed="true"
	// cards charged: 1
}
