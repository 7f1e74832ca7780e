package retry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/retry"
)

func ExampleDo() {
	r, err := retry.New(retry.Config{
		MaxAttempts: 4,
		NoWait:      true, // keep the example instant; leave it unset in production
		OnEvent: func(e bulwark.Event) {
			fmt.Printf("%s: attempt %d: %v\n", e.Kind, e.Attempt, e.Err)
		},
	})
	if err != nil {
		panic(err)
	}

	calls := 0
	fetch := func(ctx context.Context) (string, error) {
		calls++
		if calls < 3 {
			return "", errors.New("connection reset")
		}
		return "profile #42", nil
	}

	ctx, report := bulwark.WithReport(context.Background())
	v, err := retry.Do(ctx, r, fetch)
	fmt.Println(v, err, report.Attempts())
	// Output:
	// retry:attempt: attempt 1: connection reset
	// retry:attempt: attempt 2: connection reset
	// profile #42 <nil> 3
}

func ExampleNew() {
	_, err := retry.New(retry.Config{RandomizationFactor: 2})
	fmt.Println(err)
	fmt.Println(errors.Is(err, retry.ErrInvalidConfig))
	// Output:
	// retry: invalid config: RandomizationFactor is 2, must be within [0, 1] (0 means 0.5)
	// true
}

func ExampleMiddleware() {
	r, _ := retry.New(retry.Config{NoWait: true})
	calls := 0
	send := func(ctx context.Context) (int, error) {
		calls++
		if calls == 1 {
			return 0, errors.New("503 from upstream")
		}
		return 202, nil
	}

	call := bulwark.Chain(retry.Middleware[int](r))(send)
	status, err := call(context.Background())
	fmt.Println(status, err, calls)
	// Output: 202 <nil> 2
}

func ExampleError() {
	r, _ := retry.New(retry.Config{NoWait: true})
	errDown := errors.New("service down")
	_, err := retry.Do(context.Background(), r, func(context.Context) (int, error) {
		return 0, errDown
	})

	fmt.Println(err)
	var re *retry.Error
	if errors.As(err, &re) {
		fmt.Println("attempts:", re.Attempts)
	}
	fmt.Println(errors.Is(err, retry.ErrExhausted), errors.Is(err, errDown))
	// Output:
	// retry: gave up after 3 attempts: attempts exhausted; last error: service down
	// attempts: 3
	// true true
}

func ExamplePermanent() {
	r, _ := retry.New(retry.Config{})
	errInvalid := errors.New("invalid account number")
	calls := 0
	_, err := retry.Do(context.Background(), r, func(context.Context) (int, error) {
		calls++
		return 0, retry.Permanent(errInvalid) // asking again cannot help
	})
	fmt.Println(err, err == errInvalid, calls)
	// Output: invalid account number true 1
}

func ExampleAfter() {
	r, _ := retry.New(retry.Config{MaxRetryAfter: time.Minute})
	errQuota := errors.New("quota exceeded")
	start := time.Now()
	_, err := retry.Do(context.Background(), r, func(context.Context) (int, error) {
		// The service asks us to come back in an hour: no point in waiting.
		return 0, retry.After(errQuota, time.Hour)
	})
	fmt.Println(err)
	fmt.Println(errors.Is(err, retry.ErrRetryAfterTooLong), errors.Is(err, errQuota))
	fmt.Println(time.Since(start) < time.Second)
	// Output:
	// retry: gave up after 1 attempt: Retry-After exceeds MaxRetryAfter (wait 1h0m0s); last error: quota exceeded
	// true true
	// true
}

func ExampleFromResponse() {
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "30")
	rec.WriteHeader(http.StatusTooManyRequests)
	resp := rec.Result()

	err := retry.FromResponse(resp)
	fmt.Println(err)

	var he *retry.HTTPError
	if errors.As(err, &he) {
		fmt.Println(he.StatusCode, he.RetryAfter())
	}
	// Output:
	// retry: HTTP 429 Too Many Requests (Retry-After 30s)
	// 429 30s
}
