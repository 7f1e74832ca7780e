package redislimit_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// inCI reports whether the tests run in CI, where a missing server is a
// failure.
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
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
		_ = os.RemoveAll(s.dir)
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

// redisServer is a redis-server process started by the tests, listening
// on a loopback port. Without persistence configured, it forgets
// everything when stopped.
type redisServer struct {
	bin, dir string
	port     int
	extra    []string

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned
}

// startRedis starts redis-server from bin on a free loopback port, with
// dir as its working directory.
func startRedis(bin, dir string, extra ...string) (*redisServer, error) {
	var last error
	for range 3 { // another process may take the free port first
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &redisServer{bin: bin, dir: dir, port: port, extra: extra}
		if last = s.start(); last == nil {
			return s, nil
		}
	}
	return nil, last
}

// Addr returns the server's host:port.
func (s *redisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start starts the process and waits until it accepts connections.
func (s *redisServer) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--logfile", "", "--daemonize", "no",
		"--save", "", "--appendonly", "no",
	}
	args = append(args, s.extra...)
	log := &readyWriter{ready: make(chan struct{})}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = time.Second // a forked child may hold the output open
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	select {
	case <-log.ready:
		s.cmd, s.exited = cmd, exited
		return nil
	case <-exited:
		return fmt.Errorf("redis-server on port %d exited before accepting connections:\n%s", s.port, log.tail())
	case <-timeout.C:
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on port %d not ready after 15s:\n%s", s.port, log.tail())
	}
}

// Stop kills the server, as a crash would, and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *redisServer) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port and directory.
func (s *redisServer) Restart() error {
	s.Stop()
	return s.start()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readyWriter collects a server's log and closes ready once the server
// says it accepts connections.
type readyWriter struct {
	mu    sync.Mutex
	log   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.log.Len() < 1<<16 {
		w.log.Write(p)
	}
	if !w.seen && strings.Contains(w.log.String(), "Ready to accept connections") {
		w.seen = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *readyWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.log.String()
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}
