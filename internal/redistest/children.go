package redistest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
)

// Child is a copy of the test binary run as a separate process by a test
// that needs several OS processes (on one Redis server, say). The child
// runs no test: its TestMain sees the environment the parent set and runs
// the child's part, speaking a small protocol on its standard streams:
// it prints "ready", waits for "go" on its standard input, does its work
// and prints a JSON report.
type Child struct {
	Cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// StartChildren starts n children with env added to the environment, and
// waits until each has printed "ready"; what names them in failures
// ("racer", "caller"). They end with ctx.
func StartChildren(tb testing.TB, ctx context.Context, n int, what string, env ...string) []*Child {
	tb.Helper()
	cs := make([]*Child, 0, n)
	for range n {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			tb.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			tb.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		cs = append(cs, &Child{Cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)})
	}
	for i, c := range cs {
		if line, err := c.out.ReadString('\n'); err != nil || line != "ready\n" {
			tb.Fatalf("%s %d: got %q (%v); want \"ready\"", what, i, line, err)
		}
	}
	return cs
}

// Go tells every child to start its work, as close together as possible.
func Go(tb testing.TB, cs []*Child) {
	tb.Helper()
	for _, c := range cs {
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			tb.Fatal(err)
		}
	}
}

// Report decodes the child's JSON report into v and waits for the child
// to exit; an error says which failed.
func (c *Child) Report(v any) error {
	if err := json.NewDecoder(c.out).Decode(v); err != nil {
		return fmt.Errorf("reading its report: %w", err)
	}
	return c.Cmd.Wait()
}
