package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(&out))
	s := out.String()
	assert.Contains(t, s, "  -> idempotency\n    -> breaker\n      -> retry\n")
	assert.Contains(t, s, `result: "page created", rejected=false`)
	assert.Contains(t, s, "errors.Is(err, bulwark.ErrRejected)=true, rejected=true")
	assert.NotContains(t, s[strings.Index(s, "2."):], "-> retry", "a rejected call must not reach inner layers")
}
