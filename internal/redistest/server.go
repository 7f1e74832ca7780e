// Package redistest starts throwaway redis-server processes on loopback
// ports for the tests of bulwark's Redis adapters (idempotency/redisstore,
// ratelimit/redislimit, examples/orchestrator/redis), which are nested
// modules: each imports this package from the core instead of keeping a
// copy. It is internal: not part of bulwark's API.
package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AddrEnv names the environment variable with the address of a Redis
// server the tests may use instead of starting one.
const AddrEnv = "BULWARK_REDIS_ADDR"

// InCI reports whether the tests run in CI (CI=true), where a missing
// server is a failure rather than a reason to skip.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Server is a redis-server process started by the tests, listening on a
// loopback port. Without persistence configured, it forgets everything
// when stopped.
type Server struct {
	bin, dir string
	port     int
	extra    []string

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned
}

// Start starts redis-server from bin on a free loopback port, with dir as
// its working directory and extra as more configuration (redis-server
// arguments), and waits until it accepts connections (at most 15 s).
func Start(bin, dir string, extra ...string) (*Server, error) {
	var last error
	for range 3 { // another process may take the free port first
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{bin: bin, dir: dir, port: port, extra: extra}
		if last = s.start(); last == nil {
			return s, nil
		}
	}
	return nil, last
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Dir returns the server's working directory.
func (s *Server) Dir() string { return s.dir }

// start starts the process and waits until it accepts connections.
func (s *Server) start() error {
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
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port and directory.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
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
