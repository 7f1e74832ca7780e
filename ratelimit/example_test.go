package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// Three calls per second, as Notion publishes, with calls waiting at most
// 100ms for their token: the first goes at once, the second would have to
// wait about 333ms, so it is refused at once instead of sleeping.
func Example() {
	l, err := ratelimit.New("notion", ratelimit.Config{Rate: 3, MaxWait: 100 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	fetch := func(ctx context.Context) (string, error) { return "page", nil }
	ctx := context.Background()

	page, err := ratelimit.Do(ctx, l, fetch)
	fmt.Println(page, err)

	_, err = ratelimit.Do(ctx, l, fetch)
	fmt.Println(err)
	fmt.Println(errors.Is(err, ratelimit.ErrLimited), errors.Is(err, bulwark.ErrRejected))
	st := l.Stats()
	fmt.Printf("admitted %d, rejected %d\n", st.Admitted, st.Rejected)
	// Output:
	// page <nil>
	// ratelimit notion: rate limit exceeded
	// true true
	// admitted 1, rejected 1
}

// When the service answers 429 with Retry-After, pause the limiter: every
// caller backs off, and one that cannot wait that long is refused at once.
func ExampleLimiter_PauseFor() {
	l, _ := ratelimit.New("slack", ratelimit.Config{Rate: 50, Burst: 10, MaxWait: 5 * time.Second})
	l.PauseFor(30 * time.Second) // Retry-After: 30

	err := l.Wait(context.Background())
	fmt.Println(err)
	fmt.Println(errors.Is(err, ratelimit.ErrPaused))

	l.Resume()
	fmt.Println(l.Wait(context.Background()))
	// Output:
	// ratelimit slack: paused
	// true
	// <nil>
}

// Middleware wraps a function once; every call of the result takes a
// token first.
func ExampleMiddleware() {
	l, _ := ratelimit.New("search", ratelimit.Config{Rate: 10, Burst: 5})
	search := ratelimit.Middleware[int](l)(func(ctx context.Context) (int, error) {
		return 42, nil
	})
	n, err := search(context.Background())
	fmt.Println(n, err)
	// Output:
	// 42 <nil>
}
