package rollback_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
)

// A durable compensation is journaled before its step; its handler
// tolerates a step that never took effect by returning ErrNoEffect. Here
// the second charge is declined before anything is charged: its refund
// finds nothing to undo, and the first charge is refunded. A real program
// uses sqlitejournal or pgjournal, and runs rollback.Recover at start-up
// to finish what a dead process left.
func ExampleCompensation_Before() {
	charged := map[string]bool{}
	reg := rollback.NewRegistry()
	refund, err := rollback.Register(reg, "refund", func(_ context.Context, charge string) error {
		if !charged[charge] {
			fmt.Println("refund", charge+": nothing was charged")
			return rollback.ErrNoEffect
		}
		delete(charged, charge)
		fmt.Println("refund", charge)
		return nil
	})
	if err != nil {
		panic(err)
	}
	cfg := rollback.Config{Journal: journaltest.NewMemory(), Registry: reg, Owner: "example"}

	declined := errors.New("card declined")
	_, err = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
		for _, charge := range []string{"ch-1", "ch-2"} {
			p, err := refund.Before(ctx, charge) // journaled first: pending
			if err != nil {
				return 0, err
			}
			if charge == "ch-2" {
				return 0, declined // fails before charging
			}
			charged[charge] = true
			if err := p.Confirm(ctx); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}, rollback.WithConfig(cfg))
	fmt.Println(err)
	// Output:
	// refund ch-2: nothing was charged
	// refund ch-1
	// card declined
}
