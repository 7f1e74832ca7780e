// Command durable-workflow shows durable rollback: a workflow whose
// process dies midway has its completed steps undone by a recoverer, from
// a SQLite journal (one file, no server).
//
// Run it from this directory (it is a module of its own, so that the core
// module does not depend on SQLite):
//
//	go run .                        # run a workflow, crash midway, recover
//	go run . -crash-after 2         # run it and die after step 2 (exit 3)
//	go run . -recover               # later, in a new process: undo the rest
//
// The journal is durable-workflow.db in the working directory (-db to
// change it).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/sqlitejournal"
)

// lease is how long a workflow stays its process's after its last journal
// write: a recoverer takes over a workflow whose lease expired.
const lease = time.Second

// pageArgs are the arguments of the "delete page" compensation: JSON, so
// that another process can run it.
type pageArgs struct {
	Page string `json:"page"`
}

func main() {
	db := flag.String("db", "durable-workflow.db", "the SQLite journal file")
	crashAfter := flag.Int("crash-after", 0, "die (exit 3, nothing undone) after this step (1-3)")
	recoverOnly := flag.Bool("recover", false, "only recover abandoned workflows")
	flag.Parse()
	code, err := run(context.Background(), os.Stdout, *db, *crashAfter, *recoverOnly)
	if err != nil {
		fmt.Fprintln(os.Stderr, "durable-workflow:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// handlers registers the compensations, as every process of the
// application does at start-up: the one running workflows and the one
// recovering them.
func handlers(w io.Writer) (*rollback.Registry, rollback.Compensation[pageArgs], error) {
	reg := rollback.NewRegistry()
	deletePage, err := rollback.Register(reg, "delete page", func(_ context.Context, a pageArgs) error {
		// A real handler calls the service, and returns rollback.ErrNoEffect
		// when the page does not exist (its step never ran): compensations
		// recorded before their step also run at recovery.
		fmt.Fprintf(w, "  undo: deleted page %s\n", a.Page)
		return nil
	})
	return reg, deletePage, err
}

func run(ctx context.Context, w io.Writer, db string, crashAfter int, recoverOnly bool) (int, error) {
	switch {
	case recoverOnly:
		return 0, recoverAll(ctx, w, db)
	case crashAfter > 0:
		died, err := workflow(ctx, w, db, crashAfter)
		if err != nil || !died {
			return 0, err
		}
		return 3, nil // as a crash: the next `go run . -recover` undoes it
	}
	// The demo: die after step 2 (here the workflow is simply left
	// unfinished, as a killed process leaves it), then recover as another
	// process would once the lease has expired.
	defer func() {
		for _, f := range []string{db, db + "-wal", db + "-shm"} {
			_ = os.Remove(f)
		}
	}()
	if _, err := workflow(ctx, w, db, 2); err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "waiting %v for the dead process's lease to expire\n", lease)
	time.Sleep(lease + lease/4)
	return 0, recoverAll(ctx, w, db)
}

// workflow runs three steps, each creating a page; it "dies" after step
// crashAfter: the workflow is left unfinished, as a killed process leaves
// it. It reports whether it died.
func workflow(ctx context.Context, w io.Writer, db string, crashAfter int) (died bool, err error) {
	j, err := sqlitejournal.Open(db, sqlitejournal.Config{})
	if err != nil {
		return false, err
	}
	defer j.Close()
	reg, deletePage, err := handlers(w)
	if err != nil {
		return false, err
	}
	cfg := rollback.Config{Journal: j, Registry: reg, Owner: rollback.NewOwnerID(), Lease: lease}
	ctx, sc, err := rollback.Begin(ctx, rollback.WithConfig(cfg))
	if err != nil {
		return false, err
	}
	fmt.Fprintf(w, "process %s runs the workflow\n", cfg.Owner)
	for i := 1; i <= 3; i++ {
		page := fmt.Sprintf("p-%d", i)
		// Journal the compensation before the step, confirm it after.
		p, err := deletePage.Before(ctx, pageArgs{Page: page})
		if err != nil {
			return false, sc.Rollback(err)
		}
		fmt.Fprintf(w, "  step %d: created page %s\n", i, page)
		if err := p.Confirm(ctx); err != nil {
			return false, sc.Rollback(err)
		}
		if i == crashAfter {
			fmt.Fprintf(w, "process dies after step %d: nothing undone in process\n", i)
			return true, nil // the scope never ends, as after a SIGKILL
		}
	}
	return false, sc.Commit()
}

// recoverAll undoes every abandoned workflow in the journal.
func recoverAll(ctx context.Context, w io.Writer, db string) error {
	j, err := sqlitejournal.Open(db, sqlitejournal.Config{})
	if err != nil {
		return err
	}
	defer j.Close()
	reg, _, err := handlers(w)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "recoverer looks for abandoned workflows")
	rep, err := rollback.Recover(ctx, j, reg)
	if err != nil {
		return err
	}
	for _, wf := range rep.Workflows {
		fmt.Fprintf(w, "recovered workflow of %s: %d compensations ran, finished: %v\n",
			wf.PreviousOwner, len(wf.Compensated), wf.Finished)
	}
	if len(rep.Workflows) == 0 {
		fmt.Fprintln(w, "nothing to recover (a lease may not have expired yet: try again in a second)")
	}
	return nil
}
