package pipeline_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// quickStart is the README's quick start, verbatim (a test checks that
// the two stay the same).
func quickStart(ctx context.Context, createPage bulwark.Func[string]) error {
	stack, err := pipeline.New(pipeline.Reliable()) // defaults for every executor
	if err != nil {
		return err
	}
	if err := stack.Configure("payments", pipeline.Critical()); err != nil {
		return err
	}

	// createPage is any func(ctx context.Context) (T, error). Run it on the
	// "notion" executor, twice: the same operation runs once, then is replayed.
	for range 2 {
		res := pipeline.Execute(ctx, stack, "notion", createPage,
			pipeline.IdempotencyKeyParts("create-page", "Q3 roadmap"))
		if !res.Success() {
			return res.Err
		}
		fmt.Println(res.Value, "attempts:", res.Attempts, "replayed:", res.Replayed)
	}
	return nil
}

// The README's quick start: one stack, a per-executor override, and the
// same operation made twice.
func Example() {
	created := 0
	createPage := func(ctx context.Context) (string, error) {
		created++
		return fmt.Sprintf("page-%d", created), nil
	}
	if err := quickStart(context.Background(), createPage); err != nil {
		fmt.Println(err)
	}
	fmt.Println("pages created:", created)
	// Output:
	// page-1 attempts: 1 replayed: false
	// page-1 attempts: 0 replayed: true
	// pages created: 1
}

// A flaky read API behind the Unreliable preset: once the circuit opens,
// calls are answered from the last good result.
func ExampleUnreliable() {
	cfg := pipeline.Unreliable()
	cfg.Retry = &retry.Config{MaxAttempts: 1} // keep the example short
	stack, err := pipeline.New(cfg)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	up := true
	status := func(context.Context) (string, error) {
		if up {
			return "all systems go", nil
		}
		return "", errors.New("503 service unavailable")
	}

	pipeline.Do(ctx, stack, "statuspage", status, pipeline.Operation("status"))
	up = false
	for range 4 {
		res := pipeline.Execute(ctx, stack, "statuspage", status, pipeline.Operation("status"))
		fmt.Printf("%q cache=%v rejected=%v state=%s\n",
			res.Value, res.FromCache, res.Rejected, stack.Breaker("statuspage").State())
	}
	// Output:
	// "all systems go" cache=true rejected=false state=CLOSED
	// "all systems go" cache=true rejected=false state=CLOSED
	// "all systems go" cache=true rejected=false state=OPEN
	// "all systems go" cache=true rejected=true state=OPEN
}

func ExampleStack_Subscribe() {
	stack, err := pipeline.New(pipeline.Config{Retry: &retry.Config{NoWait: true}})
	if err != nil {
		panic(err)
	}
	cancel := stack.Subscribe(func(e bulwark.Event) {
		fmt.Println(e.Executor, e.Kind, e.Attempt, e.Err)
	})
	defer cancel()

	pipeline.Do(context.Background(), stack, "slack", func(context.Context) (int, error) {
		return 0, errors.New("timeout")
	})
	// Output:
	// slack retry:attempt 1 timeout
	// slack retry:attempt 2 timeout
	// slack retry:exhausted 3 retry "slack": gave up after 3 attempts: attempts exhausted; last error: timeout
}

// A sampled subscriber, such as a duration histogram, gets about one
// success in 64 (each marked Sampled, with its Duration); the exact counts
// are in Stats.
func ExampleStack_SubscribeSampled() {
	stack, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{RequestTimeout: -1}})
	if err != nil {
		panic(err)
	}
	sampled, unmarked := 0, 0 // one goroutine calls: no lock needed here
	cancel := stack.SubscribeSampled(func(e bulwark.Event) {
		if e.Kind == bulwark.RequestSuccess {
			sampled++
			if !e.Sampled {
				unmarked++
			}
		}
	})
	defer cancel()

	for range 6400 {
		_, _ = pipeline.Do(context.Background(), stack, "slack", func(context.Context) (int, error) { return 1, nil })
	}
	fmt.Println("successes:", stack.Stats()["slack"].Breaker.Successes)
	fmt.Println("about 1 in 64 sampled:", sampled >= 90 && sampled <= 100, "unmarked:", unmarked)
	// Output:
	// successes: 6400
	// about 1 in 64 sampled: true unmarked: 0
}

func ExampleMiddleware() {
	stack, err := pipeline.New(pipeline.Reliable())
	if err != nil {
		panic(err)
	}
	post := func(ctx context.Context) (string, error) { return "message sent", nil }

	// Wrap once, call many times: every call goes through the slack executor.
	send := bulwark.Chain(pipeline.Middleware[string](stack, "slack", pipeline.SkipFallback()))(post)
	v, err := send(context.Background())
	fmt.Println(v, err)
	// Output: message sent <nil>
}

func ExampleStack_Summary() {
	stack, err := pipeline.New(pipeline.Reliable())
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	ok := func(context.Context) (int, error) { return 1, nil }
	for range 3 {
		pipeline.Do(ctx, stack, "notion", ok)
	}
	pipeline.Do(ctx, stack, "slack", ok)
	stack.Breaker("slack").ForceOpen()
	pipeline.Do(ctx, stack, "slack", ok)

	fmt.Print(stack.Summary())
	// Output:
	// EXECUTOR  STATE   SUCCESS RATE  CALLS  FAILURES  REJECTIONS  OPENED  NEXT ATTEMPT  FROM CACHE  REPLAYED
	// notion    CLOSED  100.0%        3      0         0           0       -             -           0
	// slack     OPEN    100.0%        2      0         1           1       forced open   -           0
}
