package idempotency_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
)

func ExampleDo() {
	m, err := idempotency.New(nil, idempotency.Config{}) // in-memory store, 24h TTL
	if err != nil {
		panic(err)
	}
	charges := 0
	charge := func(ctx context.Context) (string, error) {
		charges++
		return fmt.Sprintf("receipt-%d", charges), nil
	}
	key, _ := idempotency.Key("payments", "charge", "order-1001")

	for range 3 { // a client retrying the same request
		receipt, err := idempotency.Do(context.Background(), m, key, charge)
		fmt.Println(receipt, err)
	}
	fmt.Println("charges:", charges)
	// Output:
	// receipt-1 <nil>
	// receipt-1 <nil>
	// receipt-1 <nil>
	// charges: 1
}

func ExampleExecute() {
	m, _ := idempotency.New(nil, idempotency.Config{})
	send := func(ctx context.Context) (int, error) { return 202, nil }

	first := idempotency.Execute(context.Background(), m, "email:welcome:42", "", send)
	again := idempotency.Execute(context.Background(), m, "email:welcome:42", "", send)
	fmt.Println(first.Value, first.Replayed)
	fmt.Println(again.Value, again.Replayed)
	// Output:
	// 202 false
	// 202 true
}

func ExampleDoPayload() {
	m, _ := idempotency.New(nil, idempotency.Config{})
	type transfer struct {
		From, To string
		Cents    int64
	}
	do := func(key string, t transfer) error {
		fingerprint, err := idempotency.Key(t)
		if err != nil {
			return err
		}
		_, err = idempotency.DoPayload(context.Background(), m, key, fingerprint,
			func(ctx context.Context) (string, error) { return "ok", nil })
		return err
	}

	fmt.Println(do("transfer-7", transfer{"alice", "bob", 500}))
	fmt.Println(do("transfer-7", transfer{"alice", "bob", 500}))
	err := do("transfer-7", transfer{"alice", "bob", 50000}) // same key, other payload
	fmt.Println(errors.Is(err, idempotency.ErrKeyReuse))
	// Output:
	// <nil>
	// <nil>
	// true
}

func ExampleKey() {
	a, _ := idempotency.Key("payments", "charge", map[string]any{"order": 1001, "cents": 4200})
	b, _ := idempotency.Key("payments", "charge", map[string]any{"cents": 4200, "order": 1001})
	c, _ := idempotency.Key("payments", "refund", map[string]any{"order": 1001, "cents": 4200})
	fmt.Println(len(a), a == b, a == c)

	_, err := idempotency.Key("payments", func() {})
	fmt.Println(err)
	// Output:
	// 64 true false
	// idempotency: invalid key part: part 1: unsupported type func()
}

func ExampleMiddleware() {
	m, _ := idempotency.New(nil, idempotency.Config{})
	calls := 0
	createOrder := bulwark.Func[string](func(ctx context.Context) (string, error) {
		calls++
		return "order-1", nil
	})
	// The key comes from each call's context; calls without one run
	// directly.
	call := idempotency.Middleware[string](m, nil)(createOrder)

	for range 2 {
		ctx, report := bulwark.WithReport(idempotency.WithKey(context.Background(), "req-abc"))
		id, _ := call(ctx)
		fmt.Println(id, "replayed:", report.Replayed())
	}
	_, _ = call(context.Background()) // no key
	fmt.Println("calls:", calls)
	// Output:
	// order-1 replayed: false
	// order-1 replayed: true
	// calls: 2
}

func ExampleConfig_cacheErrors() {
	m, _ := idempotency.New(nil, idempotency.Config{CacheErrors: true})
	attempts := 0
	charge := func(ctx context.Context) (string, error) {
		attempts++
		// A declined card stays declined: mark it permanent so that
		// duplicates get the same answer without charging again.
		return "", idempotency.Permanent(errors.New("card declined"))
	}
	for range 2 {
		r := idempotency.Execute(context.Background(), m, "charge-9", "", charge)
		fmt.Println(r.Err, r.Replayed)
	}
	fmt.Println("attempts:", attempts)
	// Output:
	// card declined false
	// card declined true
	// attempts: 1
}

func ExampleNewMemoryStore() {
	store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{MaxEntries: 10_000})
	if err != nil {
		panic(err)
	}
	m, _ := idempotency.New(store, idempotency.Config{})
	_, _ = idempotency.Do(context.Background(), m, "k", func(ctx context.Context) (int, error) { return 1, nil })
	rec, found, _ := store.Get(context.Background(), "k")
	fmt.Println(found, rec.State, rec.Value)
	// Output:
	// true COMPLETED 1
}
