package main

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/bulwark-go/bulwark/internal/redistest"
)

// The test needs a Redis server: TestMain starts its own redis-server, from
// the binary on PATH, on a free loopback port (with the core's
// internal/redistest, as the Redis adapters' tests do). Without one, the
// tests skip, except with CI=true, where they fail.

// server is the tests' redis-server, started by TestMain; nil if none
// could be, and why.
var server struct {
	*redistest.Server
	why string
}

func TestMain(m *testing.M) {
	if err := startServer(); err != nil {
		server.why = err.Error()
	}
	code := m.Run()
	if server.Server != nil {
		server.Stop()
		_ = os.RemoveAll(server.Dir())
	}
	os.Exit(code)
}

// startServer starts the tests' redis-server.
func startServer() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("no redis-server on PATH (e.g. apt-get install redis-server)")
	}
	dir, err := os.MkdirTemp("", "orchestrator-redis-test-")
	if err != nil {
		return err
	}
	s, err := redistest.Start(bin, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	server.Server = s
	return nil
}

// redisAddr returns the tests' server's address, or skips tb (fails it
// with CI=true) if there is none.
func redisAddr(tb testing.TB) string {
	tb.Helper()
	if server.Server == nil {
		msg := "no Redis server: " + server.why
		if redistest.InCI() {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return server.Addr()
}
