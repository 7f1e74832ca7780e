package redisstore_test

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv(racerEnv) != "" {
		// This process is a racer started by TestExactlyOnceAcrossProcesses.
		os.Exit(racerMain())
	}
	if os.Getenv(pauseRacerEnv) != "" {
		// This process is one of TestRedisPauseRunsNothingTwice's.
		os.Exit(pauseRacerMain())
	}
	if os.Getenv(workflowEnv) != "" {
		// This process is an orchestrator of TestWorkflowAcrossProcesses.
		os.Exit(workflowProcMain())
	}
	flag.Parse()
	if err := setupShared(); err != nil {
		fmt.Fprintf(os.Stderr, "redisstore: no Redis server (%v); %s\n", err, howTo)
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
	os.Exit(code)
}
