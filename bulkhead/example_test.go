package bulkhead_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
)

// At most two calls to a service run at once; with no queue, a third is
// refused at once with an error that wraps bulwark.ErrRejected.
func Example() {
	b, err := bulkhead.New("notion", bulkhead.Config{MaxConcurrent: 2})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	// Two calls in flight (held with the two-step form).
	r1, _ := b.Acquire(ctx)
	r2, _ := b.Acquire(ctx)

	_, err = bulkhead.Do(ctx, b, func(ctx context.Context) (string, error) {
		return "page", nil
	})
	fmt.Println(err)
	fmt.Println(errors.Is(err, bulkhead.ErrFull), errors.Is(err, bulwark.ErrRejected))

	r1()
	page, err := bulkhead.Do(ctx, b, func(ctx context.Context) (string, error) {
		return "page", nil
	})
	fmt.Println(page, err)
	r2()
	st := b.Stats()
	fmt.Printf("in flight %d, admitted %d, rejected %d\n", st.InFlight, st.Admitted, st.Rejected)
	// Output:
	// bulkhead notion: full
	// true true
	// page <nil>
	// in flight 0, admitted 3, rejected 1
}

// The two-step form, for a call that is not a function: take a slot,
// give it back exactly once.
func ExampleBulkhead_Acquire() {
	b, _ := bulkhead.New("db", bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 8})
	release, err := b.Acquire(context.Background())
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	defer release()
	fmt.Println("in flight:", b.Stats().InFlight)
	// Output:
	// in flight: 1
}

// Middleware wraps a function once; every call of the result goes
// through the bulkhead.
func ExampleMiddleware() {
	b, _ := bulkhead.New("search", bulkhead.Config{MaxConcurrent: 4})
	search := bulkhead.Middleware[int](b)(func(ctx context.Context) (int, error) {
		return 42, nil
	})
	n, err := search(context.Background())
	fmt.Println(n, err)
	// Output:
	// 42 <nil>
}
