package redislimit_test

import (
	"crypto/rand"
	"testing"

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
	"or set " + addrEnv + "=host:port to a Redis server they may write to (keys under random \"rate:bulwark-test:\" names, expiring within seconds); " +
	"with CI=true they fail instead of skipping"

// shared is the server of the tests that do not stop it; TestMain runs
// the tests with it.
var shared = &redistest.Shared{Pkg: "redislimit", HowTo: howTo}

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

// testKey returns a limit name of its own, so that tests sharing a
// server do not meet.
func testKey() string {
	return "bulwark-test:" + rand.Text()[:12]
}

// The server processes themselves come from the core's internal/redistest,
// shared with the other Redis adapters' tests.
type redisServer = redistest.Server
