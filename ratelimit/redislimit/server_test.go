package redislimit_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
const addrEnv = "BULWARK_REDIS_ADDR"

const howTo = "to run them, install redis-server (e.g. apt-get install redis-server: the tests start their own on a free loopback port) " +
	"or set " + addrEnv + "=host:port to a Redis server they may write to (keys under random \"rate:bulwark-test:\" names, expiring within seconds); " +
	"with CI=true they fail instead of skipping"

// shared is the server of the tests that do not stop it, set by TestMain:
// its address, or why there is none.
var shared struct {
	addr   string
	server *redisServer // nil if addrEnv named the server
	why    string
}

// setupShared finds or starts the shared server.
func setupShared() error {
	if addr := os.Getenv(addrEnv); addr != "" {
		shared.addr = addr
		return nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		shared.why = "no redis-server on PATH and " + addrEnv + " is not set"
		return errors.New(shared.why)
	}
	dir, err := os.MkdirTemp("", "redislimit-test-")
	if err != nil {
		return err
	}
	s, err := startRedis(bin, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		shared.why = err.Error()
		return err
	}
	shared.addr, shared.server = s.Addr(), s
	return nil
}

// stopShared stops the shared server if the tests started it.
func stopShared() {
	if s := shared.server; s != nil {
		s.Stop()
		_ = os.RemoveAll(s.Dir())
	}
}

// unavailable skips tb, or fails it in CI, for want of a server.
func unavailable(tb testing.TB, why string) {
	tb.Helper()
	msg := fmt.Sprintf("redislimit: no Redis server (%s); %s", why, howTo)
	if inCI() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// redisAddr returns the shared server's address.
func redisAddr(tb testing.TB) string {
	tb.Helper()
	if shared.addr == "" {
		unavailable(tb, shared.why)
	}
	return shared.addr
}

// ownRedis starts a redis-server for tb alone, stopped at its end; extra
// is more configuration, as redis-server arguments.
func ownRedis(tb testing.TB, extra ...string) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, "this test starts and stops its own redis-server, and there is none on PATH")
	}
	s, err := startRedis(bin, tb.TempDir(), extra...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
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

var (
	startRedis = redistest.Start
	inCI       = redistest.InCI
)
