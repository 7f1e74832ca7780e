// Command basic is the smallest useful bulwark program: a stack with the
// Reliable preset, one executor, and a call whose first attempt fails with
// a transient error and is retried.
//
// Run it with `go run ./examples/basic`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bulwark-go/bulwark/pipeline"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "basic:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	// One Stack per process; every executor (remote service) gets the
	// Reliable preset unless configured otherwise.
	stack, err := pipeline.New(pipeline.Reliable())
	if err != nil {
		return err
	}

	// A fake Notion API whose first request times out at the gateway.
	requests := 0
	createPage := func(ctx context.Context) (string, error) {
		requests++
		if requests == 1 {
			return "", errors.New("notion: 504 Gateway Timeout")
		}
		return "page-7f3a", nil
	}

	r := pipeline.Execute(context.Background(), stack, "notion", createPage)

	fmt.Fprintln(w, "pipeline.Execute(ctx, stack, \"notion\", createPage) with pipeline.Reliable():")
	fmt.Fprintf(w, "  Success()  = %v\n", r.Success())
	fmt.Fprintf(w, "  Value      = %q\n", r.Value)
	fmt.Fprintf(w, "  Err        = %v\n", r.Err)
	fmt.Fprintf(w, "  Attempts   = %d (the first failed with a 504 and was retried after a backoff wait)\n", r.Attempts)
	fmt.Fprintf(w, "  FromCache  = %v\n", r.FromCache)
	fmt.Fprintf(w, "  Replayed   = %v\n", r.Replayed)
	fmt.Fprintf(w, "  Rejected   = %v\n", r.Rejected)
	fmt.Fprintf(w, "  RolledBack = %v\n", r.RolledBack)
	fmt.Fprintf(w, "  Duration   = %v\n", r.Duration.Round(time.Millisecond))
	fmt.Fprintf(w, "notion's circuit: %v (one logical call, counted once, as a success)\n", stack.Breaker("notion").State())
	if !r.Success() || r.Attempts != 2 {
		return fmt.Errorf("unexpected result: %+v", r)
	}
	return nil
}
