// Command orchestrator runs an agent's plan — create a Notion page, create
// a Trello card, post a Slack message — as a workflow over a bulwark
// pipeline, three times: a run that dies after two steps, a rerun that
// replays them and rolls everything back when the last step fails, and a
// run that executes every step anew under new remote keys. The story and
// what each layer did are printed; see package
// github.com/bulwark-go/bulwark/examples/orchestrator/workflow.
//
// Run it with `go run ./examples/orchestrator` (idempotency records in
// memory). To keep them in Redis, run the variant in ./redis, a module of
// its own: `cd examples/orchestrator/redis && go run . -redis host:port`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/bulwark-go/bulwark/examples/orchestrator/workflow"
	"github.com/bulwark-go/bulwark/idempotency"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "orchestrator:", err)
		os.Exit(1)
	}
}

// errUseRedisVariant answers -redis: this program keeps its records in
// memory.
var errUseRedisVariant = errors.New("-redis: the Redis variant is a module of its own: " +
	"cd examples/orchestrator/redis && go run . -redis ADDR")

// run tells the story with the records in memory. args are the command's
// arguments: none, as -redis belongs to the Redis variant (an error saying
// where it is); -h prints how to run either.
func run(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("orchestrator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	redisAddr := fs.String("redis", "", "run on Redis: see ./redis")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(w, "usage: go run ./examples/orchestrator (records in memory)")
		fmt.Fprintln(w, "on Redis: cd examples/orchestrator/redis && go run . -redis ADDR")
		return nil
	} else if err != nil {
		return err
	}
	if *redisAddr != "" {
		return errUseRedisVariant
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Idempotency store: in memory (on Redis: see ./redis).\n\n")
	return workflow.Run(w, store)
}
