package redistest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Shared is the Redis server a package's tests share: the one at AddrEnv,
// or else a redis-server the package's TestMain starts from the binary on
// PATH and stops at the end. Without either, the tests skip, saying how to
// run them, except with CI=true, where they fail. Set Pkg and HowTo, then
// call Run from TestMain.
type Shared struct {
	// Pkg names the package in messages and temporary directories.
	Pkg string
	// HowTo tells how to run the tests without a server, for messages.
	HowTo string

	addr   string
	server *Server // nil if AddrEnv named the server
	why    string
}

// Run finds or starts the shared server, runs the tests and stops the
// server, and returns m.Run's code. Without a server, outside CI, it
// leaves out the examples (which cannot skip themselves); with a server it
// started, it sets AddrEnv for the examples to read. It calls flag.Parse.
func (sh *Shared) Run(m *testing.M) int {
	flag.Parse()
	if err := sh.setup(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: no Redis server (%v); %s\n", sh.Pkg, err, sh.HowTo)
		if !InCI() {
			skip := "^Example"
			if s := flag.Lookup("test.skip").Value.String(); s != "" {
				skip = s + "|" + skip
			}
			_ = flag.Set("test.skip", skip)
		}
	} else if sh.server != nil {
		_ = os.Setenv(AddrEnv, sh.addr)
	}
	code := m.Run()
	if s := sh.server; s != nil {
		s.Stop()
		_ = os.RemoveAll(s.Dir())
	}
	return code
}

// setup finds or starts the shared server.
func (sh *Shared) setup() error {
	if addr := os.Getenv(AddrEnv); addr != "" {
		sh.addr = addr
		return nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		sh.why = "no redis-server on PATH and " + AddrEnv + " is not set"
		return errors.New(sh.why)
	}
	dir, err := os.MkdirTemp("", sh.Pkg+"-test-")
	if err != nil {
		return err
	}
	s, err := Start(bin, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		sh.why = err.Error()
		return err
	}
	sh.addr, sh.server = s.Addr(), s
	return nil
}

// Unavailable skips tb, or fails it in CI, for want of a server.
func (sh *Shared) Unavailable(tb testing.TB, why string) {
	tb.Helper()
	msg := fmt.Sprintf("%s: no Redis server (%s); %s", sh.Pkg, why, sh.HowTo)
	if InCI() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// Addr returns the shared server's address, or skips (fails in CI) tb.
func (sh *Shared) Addr(tb testing.TB) string {
	tb.Helper()
	if sh.addr == "" {
		sh.Unavailable(tb, sh.why)
	}
	return sh.addr
}

// Own starts a redis-server for tb alone, stopped at its end; extra is
// more configuration, as redis-server arguments.
func (sh *Shared) Own(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		sh.Unavailable(tb, "this test starts and stops its own redis-server, and there is none on PATH")
	}
	s, err := Start(bin, tb.TempDir(), extra...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}
