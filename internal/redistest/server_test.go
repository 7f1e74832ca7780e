package redistest

import (
	"net"
	"os/exec"
	"testing"
	"time"
)

// A server starts, accepts connections, stops like a crash, and restarts
// on the same port.
func TestStartStopRestart(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if InCI() {
			t.Fatal("no redis-server on PATH")
		}
		t.Skip("no redis-server on PATH")
	}
	s, err := Start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	dial := func() error {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("dial a started server: %v", err)
	}
	s.Stop()
	if dial() == nil {
		t.Fatal("a stopped server still accepts connections")
	}
	s.Stop() // twice: nothing
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err != nil {
		t.Fatalf("dial a restarted server: %v", err)
	}
}
