package bulwarkhttp_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// baseFunc is an http.RoundTripper made of a function.
type baseFunc func(*http.Request) (*http.Response, error)

func (f baseFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The per-call values of a request (WithAttempts, idempotency.WithKey)
// apply to its own call, not to the calls Base makes: a Base that is
// itself a Transport sent a POST without an Idempotency-Key, for which
// the outer request asked 2 attempts, 4 times (2 outer × 2 inner).
func TestPerCallValuesDoNotReachBase(t *testing.T) {
	srv := newServer(t, statuses(http.StatusServiceUnavailable))
	cfg := pipeline.Config{Retry: &retry.Config{MaxAttempts: 3, NoWait: true}}
	inner := &bulwarkhttp.Transport{Stack: newStack(t, cfg), Base: http.DefaultTransport}
	var keys, sent []bool
	spy := baseFunc(func(r *http.Request) (*http.Response, error) {
		_, _, ok := idempotency.AttachedKey(r.Context())
		keys = append(keys, ok)
		sent = append(sent, r.Context().Err() == nil)
		return inner.RoundTrip(r)
	})
	outer := &bulwarkhttp.Transport{Stack: newStack(t, cfg), Base: spy}

	req, err := http.NewRequestWithContext(bulwarkhttp.WithAttempts(t.Context(), 2), http.MethodPost, srv.URL, strings.NewReader("charge $10"))
	require.NoError(t, err)
	resp, err := outer.Client().Do(req)
	require.NoError(t, err)
	_ = readAll(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, 2, srv.count(), "2 outer attempts, the inner POST without a key sent once each")

	// A key attached for the outer call is not the inner call's.
	keys = nil
	req, err = http.NewRequestWithContext(idempotency.WithKey(t.Context(), "order-7"), http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err = outer.Client().Do(req)
	require.NoError(t, err)
	_ = readAll(t, resp)
	require.NotEmpty(t, keys)
	for i, ok := range keys {
		assert.False(t, ok, "attempt %d: Base saw the outer call's key", i+1)
	}
	assert.NotContains(t, sent, false, "the attempts' contexts are live")
}
