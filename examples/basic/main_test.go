package main

import (
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun runs the program on virtual time, so the retry's backoff wait
// takes no wall time.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		require.NoError(t, run(&out))
		s := out.String()
		t.Log("\n" + s)
		for _, line := range []string{
			"  Success()  = true\n",
			`  Value      = "page-7f3a"` + "\n",
			"  Err        = <nil>\n",
			"  Attempts   = 2 ",
			"  FromCache  = false\n",
			"  Replayed   = false\n",
			"  Rejected   = false\n",
			"  RolledBack = false\n",
			"notion's circuit: CLOSED",
		} {
			assert.Contains(t, s, line)
		}
		assert.NotContains(t, s, "Duration   = 0s", "the retry waited")
	})
}
