package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/retry"
)

// Load protection on one executor: a bulkhead of one slot refuses a
// second concurrent call at once (it is not retried and never runs), and
// a 429 whose Retry-After is longer than the caller can wait pauses the
// executor's rate limiter, so the next caller, with 2 seconds to spare,
// is refused at once instead of hitting the service.
func Example_loadProtection() {
	stack, err := pipeline.New(pipeline.Config{
		Retry:     &retry.Config{NoWait: true, MaxRetryAfter: time.Minute},
		Bulkhead:  &bulkhead.Config{MaxConcurrent: 1},
		RateLimit: &ratelimit.Config{Rate: 3, Burst: 3}, // the service allows 3 requests a second
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		pipeline.Do(ctx, stack, "notion", func(context.Context) (string, error) {
			close(started)
			<-release // a slow call holds the only slot
			return "page", nil
		})
	}()
	<-started
	r := pipeline.Execute(ctx, stack, "notion", func(context.Context) (string, error) { return "page", nil })
	fmt.Println(r.Err, "| rejected:", r.Rejected, "| attempts:", r.Attempts)
	close(release)
	<-done

	_, err = pipeline.Do(ctx, stack, "notion", func(context.Context) (string, error) {
		return "", retry.After(errors.New("429 Too Many Requests"), 10*time.Minute)
	})
	fmt.Println(errors.Is(err, retry.ErrRetryAfterTooLong))

	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = pipeline.Do(short, stack, "notion", func(context.Context) (string, error) { return "page", nil })
	fmt.Println(err)
	// Output:
	// bulkhead notion: full | rejected: true | attempts: 0
	// true
	// ratelimit notion: paused
}
