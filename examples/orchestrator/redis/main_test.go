package main

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The story on Redis: the same runs as in memory (the example's own test
// checks the output line by line; workflow.Run checks the outcome of each
// run itself), and no key left behind.
func TestRunOnRedis(t *testing.T) {
	addr := redisAddr(t)
	var out strings.Builder
	require.NoError(t, run(t.Context(), &out, addr))
	s := out.String()
	t.Log("\n" + s)

	assert.Contains(t, s, "Idempotency store: Redis at "+addr)
	_, run2, ok := strings.Cut(s, "=== Run 2:")
	require.True(t, ok)
	run2, run3, ok := strings.Cut(run2, "=== Run 3:")
	require.True(t, ok)
	assert.Contains(t, run2, "    replayed: page-1 (no request sent)\n")
	assert.Contains(t, run2, "    replayed: card-1 (no request sent)\n")
	assert.Equal(t, 2, strings.Count(run2, "idempotency:forgotten"))
	assert.Contains(t, run2, "  the services hold: nothing\n")
	assert.Contains(t, run3, "    executed: page-2 in 2 attempts, key 4a80…b0.1 (generation 1)\n")
	assert.Contains(t, run3, "    executed: card-2 in 1 attempt, key 7d86…b4.1 (generation 1)\n")
	assert.Contains(t, run3, "  the services hold: pages: page-2; uploads: file-3; cards: card-2; messages: msg-1\n")

	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	n, err := client.DBSize(t.Context()).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the example deletes its keys")
}

func TestRunNoServer(t *testing.T) {
	addr := "127.0.0.1:1" // nothing listens there
	err := run(t.Context(), &strings.Builder{}, addr)
	assert.ErrorContains(t, err, "redis at "+addr)
	err = run(t.Context(), &strings.Builder{}, "redis://:bad:url")
	assert.ErrorContains(t, err, `-redis "redis://:bad:url"`)
}
