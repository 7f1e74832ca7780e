package main

import (
	"bytes"
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
)

// The test needs a Redis server: TestMain starts its own redis-server, from
// the binary on PATH, on a free loopback port (a trimmed copy of
// idempotency/redisstore's helper). Without one, the tests skip, except
// with CI=true, where they fail.

// server is the tests' redis-server, started by TestMain; nil if none
// could be, and why.
var server struct {
	*redisServer
	why string
}

func TestMain(m *testing.M) {
	if err := startServer(); err != nil {
		server.why = err.Error()
	}
	code := m.Run()
	if server.redisServer != nil {
		server.Stop()
		_ = os.RemoveAll(server.dir)
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
	for range 3 { // another process may take the free port first
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		s := &redisServer{bin: bin, dir: dir, port: port}
		if err = s.start(); err == nil {
			server.redisServer = s
			return nil
		}
	}
	_ = os.RemoveAll(dir)
	return err
}

// redisAddr returns the tests' server's address, or skips tb (fails it
// with CI=true) if there is none.
func redisAddr(tb testing.TB) string {
	tb.Helper()
	if server.redisServer == nil {
		msg := "no Redis server: " + server.why
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return server.Addr()
}

// redisServer is a redis-server process listening on a loopback port,
// without persistence.
type redisServer struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd.Wait returned
}

// Addr returns the server's host:port.
func (s *redisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start starts the process and waits until it accepts connections.
func (s *redisServer) start() error {
	log := &readyWriter{ready: make(chan struct{})}
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--logfile", "", "--daemonize", "no", "--save", "", "--appendonly", "no")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = time.Second
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
		return fmt.Errorf("redis-server on port %d exited before accepting connections:\n%s", s.port, log.String())
	case <-timeout.C:
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on port %d not ready after 15s:\n%s", s.port, log.String())
	}
}

// Stop kills the server and waits for it to exit.
func (s *redisServer) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
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

// readyWriter collects a server's log (its first 64 KiB) and closes ready
// once the server says it accepts connections.
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

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}
