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
	"fmt"
	"io"
	"os"

	"github.com/bulwark-go/bulwark/examples/orchestrator/workflow"
	"github.com/bulwark-go/bulwark/idempotency"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orchestrator:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Idempotency store: in memory (on Redis: see ./redis).\n\n")
	return workflow.Run(w, store)
}
