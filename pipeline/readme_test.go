package pipeline_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's quick start must be the code of quickStart in
// example_test.go, which compiles and runs as Example.
func TestReadmeQuickStartCompilesAsExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)

	const open = "## Quick start\n\n```go\n"
	s := string(readme)
	i := strings.Index(s, open)
	require.GreaterOrEqual(t, i, 0, "README has no quick start block")
	s = s[i+len(open):]
	block := s[:strings.Index(s, "```\n")]

	var body strings.Builder
	for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		if line != "" {
			body.WriteString("\t")
		}
		body.WriteString(line + "\n")
	}
	require.Contains(t, string(src), body.String(), "README quick start and quickStart in example_test.go differ")
	lines := strings.Count(block, "\n")
	require.LessOrEqual(t, lines, 25, "the quick start should stay about 20 lines")
}
