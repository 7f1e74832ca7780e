package redisstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/redis/go-redis/v9"
)

func Example() {
	ctx := context.Background()
	addr := os.Getenv("BULWARK_REDIS_ADDR") // host:port of a Redis server

	store, err := redisstore.Dial(ctx, addr, redisstore.Config{Prefix: "example:"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	m, err := idempotency.New(store, idempotency.Config{TTL: time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}

	type receipt struct {
		Order string
		Cents int64
	}
	charges := 0
	charge := func(order string) func(context.Context) (receipt, error) {
		return func(context.Context) (receipt, error) {
			charges++
			return receipt{Order: order, Cents: 4200}, nil
		}
	}
	order := rand.Text() // a new order each time the example runs
	key, err := idempotency.Key("payments", "charge", order)
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 3 { // a client retrying the same request
		r := idempotency.Execute(ctx, m, key, "", charge(order))
		fmt.Println(r.Value.Cents, r.Value.Order == order, r.Replayed, r.Err)
	}
	fmt.Println("charges:", charges)
	// Output:
	// 4200 true false <nil>
	// 4200 true true <nil>
	// 4200 true true <nil>
	// charges: 1
}

func ExampleNew() {
	ctx := context.Background()
	// Two processes of a service, each with a client and a Manager of its
	// own, meet only in Redis.
	process := func() (*idempotency.Manager, *redis.Client, error) {
		client := redis.NewClient(&redis.Options{Addr: os.Getenv("BULWARK_REDIS_ADDR")})
		store, err := redisstore.New(client, redisstore.Config{Prefix: "example:"})
		if err != nil {
			return nil, client, err
		}
		m, err := idempotency.New(store, idempotency.Config{TTL: time.Hour})
		return m, client, err
	}
	a, clientA, err := process()
	defer clientA.Close()
	if err != nil {
		fmt.Println(err)
		return
	}
	b, clientB, err := process()
	defer clientB.Close()
	if err != nil {
		fmt.Println(err)
		return
	}

	send := func(by string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return "welcome mail sent by " + by, nil }
	}
	key, err := idempotency.Key("email", "welcome", rand.Text()) // a new user
	if err != nil {
		fmt.Println(err)
		return
	}
	first := idempotency.Execute(ctx, a, key, "", send("process a"))
	again := idempotency.Execute(ctx, b, key, "", send("process b")) // a redelivered message
	fmt.Println(first.Value, first.Replayed)
	fmt.Println(again.Value, again.Replayed)
	// Output:
	// welcome mail sent by process a false
	// welcome mail sent by process a true
}
