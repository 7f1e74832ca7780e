// Command redis runs the orchestrator example with its idempotency records
// in Redis: the same story as `go run ./examples/orchestrator` (package
// github.com/bulwark-go/bulwark/examples/orchestrator/workflow), on a
// store that a restarted process, or another one, would share.
//
//	cd examples/orchestrator/redis && go run . -redis localhost:6379
//
// -redis is the server's host:port or redis:// URL; it defaults to
// $BULWARK_REDIS_ADDR, else localhost:6379. The records go under a prefix
// of their own, "bulwark-example:{orchestrator-<random>}:", deleted at the
// end; the hash tag keeps every key in one Redis Cluster slot and under
// the prefix, generations included.
//
// It is a module of its own because the Redis store is one
// (github.com/bulwark-go/bulwark/idempotency/redisstore): the core
// module, which holds the example, does not depend on a Redis client.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/examples/orchestrator/workflow"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
)

// addrEnv names the environment variable that gives the server's address
// when -redis is not set.
const addrEnv = "BULWARK_REDIS_ADDR"

func main() {
	addr := os.Getenv(addrEnv)
	if addr == "" {
		addr = "localhost:6379"
	}
	flag.StringVar(&addr, "redis", addr, "the Redis server: host:port or a redis:// URL (default: $"+addrEnv+", else localhost:6379)")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, addr); err != nil {
		fmt.Fprintln(os.Stderr, "orchestrator:", err)
		os.Exit(1)
	}
}

// run tells the example's story with the records in the Redis server at
// addr, then deletes them.
func run(ctx context.Context, w io.Writer, addr string) (err error) {
	opts := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		if opts, err = redis.ParseURL(addr); err != nil {
			return fmt.Errorf("-redis %q: %w", addr, err)
		}
	}
	client := redis.NewClient(opts)
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", addr, err)
	}
	prefix := "bulwark-example:{orchestrator-" + rand.Text()[:8] + "}:"
	store, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close(), deleteKeys(client, prefix)) }()
	fmt.Fprintf(w, "Idempotency store: Redis at %s, keys under %q.\n\n", addr, prefix)
	return workflow.Run(w, store)
}

// deleteKeys deletes the keys under prefix.
func deleteKeys(client *redis.Client, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := client.Keys(ctx, prefix+"*").Result() // a few keys, under one tag
	if err != nil || len(keys) == 0 {
		return err
	}
	return client.Del(ctx, keys...).Err()
}
