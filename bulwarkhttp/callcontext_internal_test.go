package bulwarkhttp

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
)

// Only the first breaker call of a request gets the roundTrip's call
// context; a breaker inside Base (after the first attempt started, or a
// second call) gets a context of its own, so that it cannot take over the
// request's.
func TestMakeCallContextServesTheFirstCallOnly(t *testing.T) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://api.example/x", nil)
	require.NoError(t, err)
	rt := newRoundTrip(&Transport{}, req)
	deadline := time.Now().Add(time.Hour)

	mk, ok := rt.Value(breaker.CallContextKey{}).(breaker.CallContextFunc)
	require.True(t, ok, "offered before the first call")
	ctx, cancel := mk(rt, deadline, breaker.ErrTimeout)
	assert.Same(t, &rt.call, ctx)
	assert.Same(t, rt.call.deadline, rt.attemptContext(), "attempts send with the call's deadline context")
	assert.Nil(t, rt.Value(breaker.CallContextKey{}), "offered once")

	other, otherCancel := makeCallContext(rt, deadline, breaker.ErrTimeout)
	assert.NotSame(t, &rt.call, other)
	otherCancel()
	assert.ErrorIs(t, other.Err(), context.Canceled)
	assert.NoError(t, ctx.Err(), "the request's call context is not the second one's")

	cancel()
	assert.NoError(t, ctx.Err(), "the breaker's cancel leaves the context to the roundTrip")
	rt.abort() // RoundTrip ends
	assert.ErrorIs(t, ctx.Err(), context.Canceled, "released: no streamed body holds it")
}

// headerValue is Header.Get for the canonical keys it is used with.
func TestHeaderValueIsGetForCanonicalKeys(t *testing.T) {
	for _, key := range []string{HeaderIdempotencyKey, "Content-Type"} {
		assert.Equal(t, http.CanonicalHeaderKey(key), key)
		h := http.Header{}
		assert.Equal(t, "", headerValue(h, key))
		h.Add(strings.ToLower(key), "a") // Add canonicalizes
		h.Add(key, "b")
		assert.Equal(t, h.Get(key), headerValue(h, key))
		assert.Equal(t, "a", headerValue(h, key))
	}
}
