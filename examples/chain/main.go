// Command chain shows how bulwark composes middlewares around a call: the
// first middleware given to Chain is the outermost layer, it sees the call
// first and the result last, and layers annotate a per-call Report through
// the context.
//
// Run it with `go run ./examples/chain`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bulwark-go/bulwark"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chain:", err)
		os.Exit(1)
	}
}

// layer returns a middleware that prints when a call enters and leaves it.
func layer(w io.Writer, depth int, name string) bulwark.Middleware[string] {
	indent := strings.Repeat("  ", depth)
	return func(next bulwark.Func[string]) bulwark.Func[string] {
		return func(ctx context.Context) (string, error) {
			fmt.Fprintf(w, "%s-> %s\n", indent, name)
			v, err := next(ctx)
			fmt.Fprintf(w, "%s<- %s (value %q, err %v)\n", indent, name, v, err)
			return v, err
		}
	}
}

// refuse is a layer that rejects every call without running it, the way an
// open circuit breaker does; it records the rejection in the call's Report.
func refuse(next bulwark.Func[string]) bulwark.Func[string] {
	return func(ctx context.Context) (string, error) {
		bulwark.ReportFrom(ctx).SetRejected()
		return "", fmt.Errorf("demo: service marked down: %w", bulwark.ErrRejected)
	}
}

func run(w io.Writer) error {
	service := func(context.Context) (string, error) { return "page created", nil }

	fmt.Fprintln(w, "1. A call through three layers (first argument = outermost):")
	call := bulwark.Chain(layer(w, 1, "idempotency"), layer(w, 2, "breaker"), layer(w, 3, "retry"))(service)
	ctx, report := bulwark.WithReport(context.Background())
	v, err := call(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   result: %q, rejected=%v\n\n", v, report.Rejected())

	fmt.Fprintln(w, "2. The same stack with a layer that refuses the call:")
	call = bulwark.Chain(layer(w, 1, "idempotency"), refuse, layer(w, 2, "retry"))(service)
	ctx, report = bulwark.WithReport(context.Background())
	_, err = call(ctx)
	if !errors.Is(err, bulwark.ErrRejected) {
		return fmt.Errorf("expected a rejection, got %v", err)
	}
	fmt.Fprintf(w, "   error: %v\n   errors.Is(err, bulwark.ErrRejected)=%v, rejected=%v\n",
		err, errors.Is(err, bulwark.ErrRejected), report.Rejected())
	return nil
}
