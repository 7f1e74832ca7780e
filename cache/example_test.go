package cache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/cache"
)

func Example() {
	c, err := cache.New[string, int](cache.Config{MaxEntries: 1000, TTL: time.Minute})
	if err != nil {
		panic(err)
	}
	c.Set("answer", 42)
	v, ok := c.Get("answer")
	fmt.Println(v, ok)
	_, ok = c.Get("question")
	fmt.Println(ok)
	fmt.Printf("%+v\n", c.Stats())
	// Output:
	// 42 true
	// false
	// {Hits:1 Misses:1 Evictions:0 Expirations:0}
}

func ExampleNew_invalid() {
	_, err := cache.New[string, int](cache.Config{TTL: -time.Second})
	fmt.Println(err)
	fmt.Println(errors.Is(err, cache.ErrInvalidConfig))
	// Output:
	// cache: invalid config: TTL is negative (-1s)
	// true
}

type Dashboard struct {
	Open, Closed int
}

// The fallback remembers the last good dashboard and serves it while the
// service is refused by an open circuit.
func ExampleFallback() {
	c, _ := cache.New[string, Dashboard](cache.Config{})

	down := false
	fetch := func(context.Context) (Dashboard, error) {
		if down {
			// What an open circuit breaker returns.
			return Dashboard{}, fmt.Errorf("breaker: circuit open: %w", bulwark.ErrRejected)
		}
		return Dashboard{Open: 3, Closed: 10}, nil
	}
	onEvent := func(e bulwark.Event) { fmt.Println("event:", e.Kind, "after", e.Err) }
	call := cache.Fallback[Dashboard](c, "dashboard", cache.FallbackConfig{
		When:    cache.OnlyRejections,
		MaxAge:  10 * time.Minute,
		OnEvent: onEvent,
	})(fetch)

	d, err := call(context.Background()) // succeeds: stored
	fmt.Println(d, err)

	down = true
	ctx, report := bulwark.WithReport(context.Background())
	d, err = call(ctx) // refused: answered from the cache
	fmt.Println(d, err, "from cache:", report.FromCache())
	// Output:
	// {3 10} <nil>
	// event: fallback:used after breaker: circuit open: bulwark: rejected
	// {3 10} <nil> from cache: true
}

// FallbackFunc takes each call's key from its context, so one middleware
// serves many keys; SkipFallback exempts calls that must never see an old
// result.
func ExampleFallbackFunc() {
	c, _ := cache.New[string, string](cache.Config{})
	fail := false
	price := func(ctx context.Context) (string, error) {
		if fail {
			return "", errors.New("pricing service down")
		}
		item, _ := cache.KeyFrom[string](ctx)
		return item + ": 10 EUR", nil
	}
	call := cache.FallbackFunc[string](c, cache.AttachedKey[string], cache.FallbackConfig{})(price)

	book := cache.WithKey(context.Background(), "book")
	fmt.Println(call(book))

	fail = true
	fmt.Println(call(book))                                       // served from the cache
	fmt.Println(call(cache.WithKey(context.Background(), "pen"))) // nothing cached for pen
	fmt.Println(call(cache.SkipFallback(book)))                   // this call wants no fallback
	// Output:
	// book: 10 EUR <nil>
	// book: 10 EUR <nil>
	//  pricing service down
	//  pricing service down
}

type User struct{ Name string }
type Order struct{ ID int }

// One cache of any backs the fallbacks of several result types, as the
// pipeline does for an executor.
func ExampleFallback_sharedCache() {
	c, _ := cache.New[string, any](cache.Config{})
	users := cache.Fallback[User](c, "user:1", cache.FallbackConfig{})
	orders := cache.Fallback[Order](c, "order:7", cache.FallbackConfig{})

	_, _ = users(func(context.Context) (User, error) { return User{"ada"}, nil })(context.Background())
	_, _ = orders(func(context.Context) (Order, error) { return Order{7}, nil })(context.Background())

	down := errors.New("down")
	u, err := users(func(context.Context) (User, error) { return User{}, down })(context.Background())
	fmt.Println(u, err)
	o, err := orders(func(context.Context) (Order, error) { return Order{}, down })(context.Background())
	fmt.Println(o, err)
	fmt.Println(c.Len())
	// Output:
	// {ada} <nil>
	// {7} <nil>
	// 2
}
