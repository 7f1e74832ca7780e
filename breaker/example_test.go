package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
)

var errUnavailable = errors.New("inventory: 503 service unavailable")

func ExampleDo() {
	b, err := breaker.New("inventory", breaker.Config{FailureThreshold: 2})
	if err != nil {
		panic(err)
	}
	calls := 0
	lookup := func(ctx context.Context) (int, error) {
		calls++
		return 0, errUnavailable
	}
	for i := 1; i <= 4; i++ {
		_, err := breaker.Do(context.Background(), b, lookup)
		fmt.Printf("call %d: %v (circuit %v, rejected: %v)\n", i, err, b.State(), errors.Is(err, bulwark.ErrRejected))
	}
	fmt.Println("the service was called", calls, "times")
	// Output:
	// call 1: inventory: 503 service unavailable (circuit CLOSED, rejected: false)
	// call 2: inventory: 503 service unavailable (circuit OPEN, rejected: false)
	// call 3: breaker inventory: circuit open (circuit OPEN, rejected: true)
	// call 4: breaker inventory: circuit open (circuit OPEN, rejected: true)
	// the service was called 2 times
}

func ExampleMiddleware() {
	b, _ := breaker.New("search", breaker.Config{FailureThreshold: 1})
	search := bulwark.Chain(breaker.Middleware[[]string](b))(
		func(ctx context.Context) ([]string, error) {
			return nil, errors.New("search: connection refused")
		})

	ctx, report := bulwark.WithReport(context.Background())
	_, err := search(ctx)
	fmt.Println(err, report.Rejected())
	ctx, report = bulwark.WithReport(context.Background())
	_, err = search(ctx)
	fmt.Println(err, report.Rejected())
	// Output:
	// search: connection refused false
	// breaker search: circuit open true
}

// A call site that is not a function, such as a message handler, uses the
// two-step form.
func ExampleBreaker_Allow() {
	b, _ := breaker.New("mailer", breaker.Config{})
	send := func(to string) error { return nil } // the real work

	done, err := b.Allow()
	if err != nil {
		fmt.Println("not sending:", err)
		return
	}
	err = send("ada@example.com")
	done(err) // exactly once, with the call's error

	fmt.Println("successes:", b.Stats().Successes)
	// Output:
	// successes: 1
}

func ExampleConfig_events() {
	b, _ := breaker.New("payments", breaker.Config{
		FailureThreshold: 1,
		OnEvent: func(e bulwark.Event) {
			switch e.Kind {
			case bulwark.CircuitOpened, bulwark.CircuitHalfOpen, bulwark.CircuitClosed:
				st := e.Detail.(breaker.Stats)
				fmt.Printf("%s %s: %s -> %s after %d failure(s)\n", e.Executor, e.Kind, e.From, e.To, st.Failures)
			default:
				fmt.Printf("%s %s: %v\n", e.Executor, e.Kind, e.Err)
			}
		},
	})
	charge := func(context.Context) (string, error) { return "", errors.New("card processor timeout") }
	breaker.Do(context.Background(), b, charge)
	breaker.Do(context.Background(), b, charge)
	// Output:
	// payments request:failure: card processor timeout
	// payments circuit:opened: CLOSED -> OPEN after 1 failure(s)
	// payments request:rejected: breaker payments: circuit open
}

func ExampleGroup() {
	// Defaults for every executor, and stricter settings for payments.
	g, err := breaker.NewGroup(breaker.Config{FailureThreshold: 3, ResetTimeout: time.Minute})
	if err != nil {
		panic(err)
	}
	err = g.Configure("payments", breaker.Config{
		FailureThreshold: 1, ResetTimeout: 2 * time.Minute, SuccessThreshold: 5, RequestTimeout: 20 * time.Second,
	})
	if err != nil {
		panic(err)
	}

	ok := func(context.Context) (string, error) { return "ok", nil }
	down := func(context.Context) (string, error) { return "", errUnavailable }
	breaker.Do(context.Background(), g.Get("notion"), ok)
	breaker.Do(context.Background(), g.Get("notion"), ok)
	breaker.Do(context.Background(), g.Get("notion"), down)
	breaker.Do(context.Background(), g.Get("payments"), down)
	breaker.Do(context.Background(), g.Get("payments"), ok)

	fmt.Print(g.Summary())
	// Output:
	// EXECUTOR  STATE   SUCCESS RATE  CALLS  FAILURES  REJECTIONS  OPENED  NEXT ATTEMPT
	// notion    CLOSED  66.7%         3      1         0           0       -
	// payments  OPEN    0.0%          2      1         1           1       in 2m0s
}

func ExampleNew_invalid() {
	_, err := breaker.New("notion", breaker.Config{FailureRatio: 0.5})
	var ce *breaker.ConfigError
	fmt.Println(errors.As(err, &ce), ce.Field)
	fmt.Println(err)
	// Output:
	// true MinimumThroughput
	// breaker "notion": invalid Config.MinimumThroughput: must be at least 1 in ratio mode (FailureRatio is set)
}
