package pipeline_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/pipeline"
)

// A closed list: a misspelt executor fails, naming it, and runs nothing.
func TestClosedListOfExecutors(t *testing.T) {
	s := newStack(t, pipeline.Unreliable())
	require.NoError(t, s.Configure("notion", pipeline.Unreliable()))
	require.NoError(t, s.SetMaxOnDemand(0))

	ran := false
	fn := func(context.Context) (string, error) { ran = true; return "page", nil }
	r := pipeline.Execute(t.Context(), s, "notoin", fn)
	require.Error(t, r.Err)
	assert.ErrorIs(t, r.Err, pipeline.ErrUnknownExecutor)
	assert.ErrorIs(t, r.Err, pipeline.ErrInvalid)
	assert.Contains(t, r.Err.Error(), `"notoin"`)
	assert.False(t, ran)

	_, err := pipeline.Do(t.Context(), s, "notoin", fn)
	assert.ErrorIs(t, err, pipeline.ErrUnknownExecutor)
	_, err = pipeline.Middleware[string](s, "notoin")(fn)(t.Context())
	assert.ErrorIs(t, err, pipeline.ErrUnknownExecutor)
	assert.False(t, ran)

	r = pipeline.Execute(t.Context(), s, "notion", fn)
	require.NoError(t, r.Err)
	assert.Equal(t, []string{"notion"}, s.Executors())

	assert.ErrorIs(t, s.SetMaxOnDemand(-1), pipeline.ErrInvalid)
	var nilStack *pipeline.Stack
	assert.ErrorIs(t, nilStack.SetMaxOnDemand(1), pipeline.ErrInvalid)
}

// Names chosen by input (hosts, tenants) cannot grow a Stack without
// bound: after the on-demand limit, calls to new names fail, and the heap
// stays flat under a million of them.
func TestOnDemandExecutorsBounded(t *testing.T) {
	s := newStack(t, pipeline.Unreliable())
	require.NoError(t, s.SetMaxOnDemand(100))
	fn := func(context.Context) (int, error) { return 1, nil }
	for i := range 100 {
		_, err := pipeline.Do(t.Context(), s, fmt.Sprintf("host-%d", i), fn)
		require.NoError(t, err)
	}
	assert.Len(t, s.Executors(), 100)

	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		_, err := pipeline.Do(t.Context(), s, fmt.Sprintf("attacker-%d", i), fn)
		if err == nil {
			t.Fatalf("call %d to a new executor succeeded beyond the limit", i)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	assert.Len(t, s.Executors(), 100)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, growth, int64(1<<20), "heap grew by %d bytes", growth)

	// Raising the limit lets new names in again; configured ones never count.
	require.NoError(t, s.SetMaxOnDemand(101))
	_, err := pipeline.Do(t.Context(), s, "host-100", fn)
	require.NoError(t, err)
	require.NoError(t, s.Configure("configured", pipeline.Reliable()))
	_, err = pipeline.Do(t.Context(), s, "configured", fn)
	require.NoError(t, err)
	_, err = pipeline.Do(t.Context(), s, "host-101", fn)
	assert.ErrorIs(t, err, pipeline.ErrUnknownExecutor)
}

// A nil context is an error wrapping ErrInvalid, for every form.
func TestNilContext(t *testing.T) {
	s := newStack(t, pipeline.Reliable())
	ran := false
	fn := func(context.Context) (int, error) { ran = true; return 1, nil }
	var nilCtx context.Context // the input under test
	r := pipeline.Execute(nilCtx, s, "notion", fn)
	assert.ErrorIs(t, r.Err, pipeline.ErrInvalid)
	_, err := pipeline.Do(nilCtx, s, "notion", fn)
	assert.ErrorIs(t, err, pipeline.ErrInvalid)
	_, err = pipeline.Middleware[int](s, "notion")(fn)(nilCtx)
	assert.ErrorIs(t, err, pipeline.ErrInvalid)
	assert.False(t, ran)
}
