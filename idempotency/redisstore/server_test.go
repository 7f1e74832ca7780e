package redisstore_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// The tests need a Redis server. They start their own redis-server on a
// free loopback port, from the binary on PATH, or use the server at
// BULWARK_REDIS_ADDR; the fault tests always start their own (they stop
// and restart it). Without either, the tests skip, saying how to run
// them, except with CI=true, where they fail.

// addrEnv names the environment variable with the address of a Redis
// server the tests may use instead of starting one.
const addrEnv = redistest.AddrEnv

const howTo = "to run them, install redis-server (e.g. apt-get install redis-server: the tests start their own on a free loopback port) " +
	"or set " + addrEnv + "=host:port to a Redis server they may write to (keys under random \"bulwark-test:\" prefixes, deleted at the end, " +
	"and the examples' under \"example:\", expiring within an hour); " +
	"with CI=true they fail instead of skipping"

// shared is the server of the tests that do not stop it; TestMain runs
// the tests with it.
var shared = &redistest.Shared{Pkg: "redisstore", HowTo: howTo}

// redisAddr returns the shared server's address.
func redisAddr(tb testing.TB) string { tb.Helper(); return shared.Addr(tb) }

// ownRedis starts a redis-server for tb alone, stopped at its end; extra
// is more configuration, as redis-server arguments.
func ownRedis(tb testing.TB, extra ...string) *redisServer {
	tb.Helper()
	return shared.Own(tb, extra...)
}

// newClient returns a client of the server at addr, closed at tb's end.
func newClient(tb testing.TB, addr string) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// testPrefix returns a key prefix of its own, so that tests sharing a
// server do not meet.
func testPrefix() string {
	return "bulwark-test:" + rand.Text()[:12] + ":"
}

// newStore returns a store over a new client of the server at addr, under
// a prefix of its own (unless cfg has one), and the client. At tb's end
// it deletes the store's keys, if the server still answers.
func newStore(tb testing.TB, addr string, cfg redisstore.Config) (*redisstore.Store, *redis.Client) {
	tb.Helper()
	client := newClient(tb, addr)
	if cfg.Prefix == "" {
		cfg.Prefix = testPrefix()
	}
	s, err := redisstore.New(client, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	prefix := cfg.Prefix
	tb.Cleanup(func() { deleteKeys(client, prefix) })
	return s, client
}

// deleteKeys deletes the keys under prefix, for servers the tests share
// with others. Errors are ignored: the server may be gone.
func deleteKeys(client *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		client.Del(ctx, keys[:n]...)
		keys = keys[n:]
	}
}

// The server processes themselves come from the core's internal/redistest,
// shared with the other Redis adapters' tests.
type redisServer = redistest.Server

var freePort = redistest.FreePort
