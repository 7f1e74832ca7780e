package redisstore_test

import (
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
	code := shared.Run(m)
	os.Exit(code)
}
