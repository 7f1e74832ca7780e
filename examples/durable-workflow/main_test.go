package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The demo undoes, from the journal, the two steps done before the crash,
// newest first, and nothing else.
func TestDemo(t *testing.T) {
	var out strings.Builder
	code, err := run(t.Context(), &out, filepath.Join(t.TempDir(), "j.db"), 0, false)
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	s := out.String()
	assert.Contains(t, s, "  undo: deleted page p-2\n  undo: deleted page p-1\n")
	assert.NotContains(t, s, "p-3")
	assert.Contains(t, s, "2 compensations ran, finished: true")
}

// -crash-after then -recover: two processes' worth of work on one file.
func TestCrashThenRecover(t *testing.T) {
	db := filepath.Join(t.TempDir(), "j.db")
	var out strings.Builder
	code, err := run(t.Context(), &out, db, 3, false)
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	out.Reset()
	_, err = run(t.Context(), &out, db, 0, true)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "nothing to recover", "the lease holds")
}
