package redislimit_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// This process is one of TestSharedLimitAcrossProcesses's callers.
		os.Exit(childMain())
	}
	flag.Parse()
	if err := setupShared(); err != nil {
		fmt.Fprintf(os.Stderr, "redislimit: no Redis server (%v); %s\n", err, howTo)
		if !inCI() {
			// The examples cannot skip themselves: leave them out.
			skip := "^Example"
			if s := flag.Lookup("test.skip").Value.String(); s != "" {
				skip = s + "|" + skip
			}
			_ = flag.Set("test.skip", skip)
		}
	} else if shared.server != nil {
		// The examples read the server's address from the environment.
		_ = os.Setenv(addrEnv, shared.addr)
	}
	code := m.Run()
	stopShared()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
