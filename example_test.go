package bulwark_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark"
)

// A middleware that logs the call on the way in and the result on the way out.
func logged(name string) bulwark.Middleware[string] {
	return func(next bulwark.Func[string]) bulwark.Func[string] {
		return func(ctx context.Context) (string, error) {
			fmt.Println(name, "in")
			v, err := next(ctx)
			fmt.Println(name, "out:", v, err)
			return v, err
		}
	}
}

func ExampleChain() {
	call := bulwark.Chain(logged("outer"), logged("inner"))(
		func(context.Context) (string, error) { return "pong", nil })

	v, err := call(context.Background())
	fmt.Println("result:", v, err)
	// Output:
	// outer in
	// inner in
	// inner out: pong <nil>
	// outer out: pong <nil>
	// result: pong <nil>
}

func ExampleReport() {
	// A layer annotates the call's report through the context ...
	replay := func(next bulwark.Func[int]) bulwark.Func[int] {
		return func(ctx context.Context) (int, error) {
			bulwark.ReportFrom(ctx).SetReplayed()
			return 42, nil
		}
	}

	// ... and whoever made the call reads it afterwards.
	ctx, report := bulwark.WithReport(context.Background())
	v, _ := replay(nil)(ctx)
	fmt.Println(v, report.Replayed(), report.FromCache())

	// Without a report the same layer still works: a nil Report ignores writes.
	v, _ = replay(nil)(context.Background())
	fmt.Println(v)
	// Output:
	// 42 true false
	// 42
}

func ExampleErrRejected() {
	// A layer that refuses calls wraps ErrRejected ...
	errOpen := fmt.Errorf("breaker: circuit open: %w", bulwark.ErrRejected)

	// ... so other layers can recognise a refusal without importing it.
	err := fmt.Errorf("calling notion: %w", errOpen)
	fmt.Println(errors.Is(err, bulwark.ErrRejected))
	// Output: true
}

func ExampleListener() {
	var listen bulwark.Listener = func(e bulwark.Event) {
		fmt.Printf("%s %s %s->%s\n", e.Executor, e.Kind, e.From, e.To)
	}
	listen(bulwark.Event{Kind: bulwark.CircuitOpened, Executor: "notion", From: "CLOSED", To: "OPEN"})
	// Output: notion circuit:opened CLOSED->OPEN
}
