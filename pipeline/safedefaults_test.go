package pipeline_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// status is what a fake HTTP API answers: retry.FromResponse of a
// response with the code.
func status(code int) error {
	return retry.FromResponse(&http.Response{StatusCode: code, Status: http.StatusText(code), Header: http.Header{}})
}

func value(v string) bulwark.Func[string] {
	return func(context.Context) (string, error) { return v, nil }
}

func failing(code int) bulwark.Func[string] {
	return func(context.Context) (string, error) { return "", status(code) }
}

// Input 1: calls that name no key never share a fallback value.
func TestSafeDefaultsUnnamedCallsNotServedFromCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Unreliable())
		ctx := t.Context()
		r := pipeline.Execute(ctx, s, "notion", value("page A"))
		require.NoError(t, r.Err)
		assert.Equal(t, "page A", r.Value)

		r = pipeline.Execute(ctx, s, "notion", failing(503))
		require.Error(t, r.Err, "page B is not answered with page A")
		assert.Empty(t, r.Value)
		assert.False(t, r.FromCache)
		var he *retry.HTTPError
		require.ErrorAs(t, r.Err, &he)
		assert.Equal(t, 503, he.StatusCode)
		assert.Equal(t, 3, r.Attempts, "a 503 is still retried")
		fb := s.Stats()["notion"].Fallback
		assert.Zero(t, fb.Hits+fb.Misses, "the fallback did not look at a call without a key")
	})
}

// Input 2: a cached value answering a keyed call is not recorded as the
// operation's result; the next keyed call runs the operation.
func TestSafeDefaultsCachedValueNotRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Unreliable())
		ctx := t.Context()
		fb := pipeline.FallbackKey("list-cards")
		key := pipeline.IdempotencyKeyParts("list-cards", "request-7")

		require.NoError(t, pipeline.Execute(ctx, s, "trello", value("old list"), fb).Err)

		r := pipeline.Execute(ctx, s, "trello", failing(503), fb, key)
		require.NoError(t, r.Err)
		assert.Equal(t, "old list", r.Value)
		assert.True(t, r.FromCache)
		assert.False(t, r.Replayed)

		ran := 0
		r = pipeline.Execute(ctx, s, "trello", func(context.Context) (string, error) {
			ran++
			return "new list", nil
		}, fb, key)
		require.NoError(t, r.Err)
		assert.Equal(t, 1, ran, "the operation runs once the service is back")
		assert.Equal(t, "new list", r.Value)
		assert.False(t, r.Replayed)
		assert.False(t, r.FromCache)

		r = pipeline.Execute(ctx, s, "trello", value("never"), fb, key)
		assert.True(t, r.Replayed, "now the real result is recorded")
		assert.Equal(t, "new list", r.Value)
	})
}

// Input 3 and the ten-404s rule: a final answer reaches the caller, is
// tried once, is never answered from the cache and never opens the circuit.
func TestSafeDefaultsFinalAnswerNotAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Unreliable())
		ctx := t.Context()
		fb := pipeline.FallbackKey("get-page:42")
		require.NoError(t, pipeline.Execute(ctx, s, "notion", value("page 42"), fb).Err)

		for i := range 10 {
			r := pipeline.Execute(ctx, s, "notion", failing(404), fb)
			require.Error(t, r.Err, "call %d", i)
			assert.True(t, bulwark.IsFinal(r.Err))
			var he *retry.HTTPError
			require.ErrorAs(t, r.Err, &he)
			assert.Equal(t, 404, he.StatusCode)
			assert.Empty(t, r.Value, "no value from the cache")
			assert.False(t, r.FromCache)
			assert.Equal(t, 1, r.Attempts, "a 404 is not retried")
		}
		st := s.Stats()["notion"].Breaker
		assert.Equal(t, breaker.Closed, st.State)
		assert.Equal(t, int64(10), st.FinalAnswers)
		assert.Zero(t, st.Failures)

		// Another page still works.
		r := pipeline.Execute(ctx, s, "notion", value("page 43"), pipeline.FallbackKey("get-page:43"))
		require.NoError(t, r.Err)
		assert.Equal(t, "page 43", r.Value)
	})
}

// A 503 outage still opens the circuit and is answered from the cache
// under a named key.
func TestSafeDefaultsOutageStillServedFromCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Unreliable())
		ctx := t.Context()
		fb := pipeline.FallbackKey("get-page:42")
		require.NoError(t, pipeline.Execute(ctx, s, "notion", value("page 42"), fb).Err)
		for range 3 {
			r := pipeline.Execute(ctx, s, "notion", failing(503), fb)
			require.NoError(t, r.Err)
			assert.True(t, r.FromCache)
			assert.Equal(t, "page 42", r.Value)
		}
		assert.Equal(t, breaker.Open, s.Breaker("notion").State())
		r := pipeline.Execute(ctx, s, "notion", value("unused"), fb)
		assert.True(t, r.Rejected)
		assert.True(t, r.FromCache)
		assert.Equal(t, "page 42", r.Value)

		// Input 5: without a key the rejection reaches the caller, naming
		// the executor.
		r = pipeline.Execute(ctx, s, "notion", value("unused"))
		require.Error(t, r.Err)
		assert.EqualError(t, r.Err, "breaker notion: circuit open")
		assert.ErrorIs(t, r.Err, breaker.ErrOpen)
		assert.ErrorIs(t, r.Err, bulwark.ErrRejected)
		assert.True(t, r.Rejected)
	})
}

// Input 4: an executor with its own Config keeps the stack-wide Store and
// Logger.
func TestSafeDefaultsExecutorsInheritStoreAndLogger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
		require.NoError(t, err)
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, nil))
		defaults := pipeline.Reliable()
		defaults.Idempotency.Store = shared
		defaults.Logger = logger

		// Two stacks over one store stand for two processes.
		a := newStack(t, defaults)
		b := newStack(t, defaults)
		for _, s := range []*pipeline.Stack{a, b} {
			require.NoError(t, s.Configure("payments", pipeline.Critical()))
		}
		ctx := t.Context()
		ran := 0
		charge := func(context.Context) (string, error) { ran++; return "ch_1", nil }
		key := pipeline.IdempotencyKeyParts("charge", "order-9")

		r := pipeline.Execute(ctx, a, "payments", charge, key)
		require.NoError(t, r.Err)
		r = pipeline.Execute(ctx, b, "payments", charge, key)
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed, "the other process sees the record in the shared store")
		assert.Equal(t, 1, ran, "exactly once across processes")
		assert.Equal(t, 1, shared.Len())

		// The Logger: the payments circuit opening is logged.
		for range 2 {
			pipeline.Execute(ctx, a, "payments", failing(503))
		}
		require.Equal(t, breaker.Open, a.Breaker("payments").State())
		assert.Contains(t, logs.String(), "payments")
		assert.Contains(t, logs.String(), "OPEN")

		// An executor that names its own store keeps it.
		own, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
		require.NoError(t, err)
		cfg := pipeline.Critical()
		cfg.Idempotency.Store = own
		require.NoError(t, a.Configure("ledger", cfg))
		require.NoError(t, pipeline.Execute(ctx, a, "ledger", charge, key).Err)
		assert.Equal(t, 1, own.Len())
		assert.Equal(t, 1, shared.Len())
	})
}

// An empty operation name or fallback key is an error, not a shared key.
func TestSafeDefaultsEmptyKeysRefused(t *testing.T) {
	s := newStack(t, pipeline.Unreliable())
	for _, opt := range []pipeline.CallOption{pipeline.Operation(""), pipeline.FallbackKey("")} {
		ran := false
		r := pipeline.Execute(t.Context(), s, "notion", func(context.Context) (string, error) { ran = true; return "", nil }, opt)
		assert.ErrorIs(t, r.Err, pipeline.ErrInvalid)
		assert.False(t, ran)
	}
}
