package dashboard_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/dashboard"
	"github.com/bulwark-go/bulwark/pipeline"
)

func TestActionsAreOffByDefault(t *testing.T) {
	s := newStack(t)
	d := newDashboard(t, dashboard.Config{Stack: s})
	succeed(s, "notion")
	s.Breaker("notion").ForceOpen()
	for _, target := range []string{"/actions/reset?executor=notion", "/actions/force-open?executor=notion"} {
		w := serve(d, http.MethodPost, target, http.Header{"Origin": {"http://status.example"}})
		assert.Equal(t, http.StatusNotFound, w.code, target)
	}
	assert.Equal(t, breaker.Open, s.Breaker("notion").State(), "the reset did not happen")
}

func TestActionsArePostOnly(t *testing.T) {
	s := newStack(t)
	d := newDashboard(t, dashboard.Config{Stack: s, Actions: true})
	succeed(s, "notion")
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
		w := serve(d, method, "/actions/force-open?executor=notion", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, w.code, method)
		assert.Equal(t, "POST", w.header.Get("Allow"), method)
	}
	assert.Equal(t, breaker.Closed, s.Breaker("notion").State())
}

func TestActionsRefuseCrossOriginRequests(t *testing.T) {
	s := newStack(t)
	d := newDashboard(t, dashboard.Config{Stack: s, Actions: true})
	succeed(s, "notion")
	for _, h := range []http.Header{
		{"Origin": {"https://evil.example"}},
		{"Origin": {"http://status.example.evil.example"}},
		{"Origin": {"null"}},
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Sec-Fetch-Site": {"same-site"}},
		{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://status.example"}}, // Sec-Fetch-Site wins
	} {
		w := serve(d, http.MethodPost, "/actions/force-open?executor=notion", h)
		assert.Equal(t, http.StatusForbidden, w.code, "%v", h)
	}
	assert.Equal(t, breaker.Closed, s.Breaker("notion").State(), "no cross-origin request moved the circuit")
}

func TestSameOriginActionsWork(t *testing.T) {
	s := newStack(t)
	d := newDashboard(t, dashboard.Config{Stack: s, Actions: true})
	fail(s, "notion")
	fail(s, "notion")
	require.Equal(t, breaker.Open, s.Breaker("notion").State())

	for _, h := range []http.Header{
		{"Origin": {"http://status.example"}},
		{"Sec-Fetch-Site": {"same-origin"}, "Origin": {"http://status.example"}},
		{}, // not a browser (curl): no CSRF to fear
	} {
		w := serve(d, http.MethodPost, "/actions/reset?executor=notion", h)
		require.Equal(t, http.StatusOK, w.code, "%v: %s", h, w.body.String())
		var ex dashboard.Executor
		require.NoError(t, json.Unmarshal(w.body.Bytes(), &ex))
		assert.Equal(t, "CLOSED", ex.State)
		assert.Equal(t, breaker.Closed, s.Breaker("notion").State())

		w = serve(d, http.MethodPost, "/actions/force-open?executor=notion", h)
		require.Equal(t, http.StatusOK, w.code, "%v: %s", h, w.body.String())
		require.NoError(t, json.Unmarshal(w.body.Bytes(), &ex))
		assert.True(t, ex.Forced)
		assert.True(t, s.Breaker("notion").Stats().Forced)
	}

	// The page shows the buttons.
	assert.Contains(t, serve(d, http.MethodGet, "/", nil).body.String(),
		`<button type="button" data-action="actions/reset" data-executor="notion">Reset</button>`)
}

func TestActionsOnUnknownExecutors(t *testing.T) {
	s := newStack(t)
	require.NoError(t, s.Configure("github", pipeline.Config{})) // no breaker
	d := newDashboard(t, dashboard.Config{Stack: s, Actions: true})
	assert.Equal(t, http.StatusNotFound, serve(d, http.MethodPost, "/actions/reset?executor=nobody", nil).code)
	assert.Equal(t, http.StatusNotFound, serve(d, http.MethodPost, "/actions/reset?executor=github", nil).code)
	assert.Equal(t, http.StatusBadRequest, serve(d, http.MethodPost, "/actions/reset", nil).code)
	assert.Equal(t, http.StatusNotFound, serve(d, http.MethodPost, "/actions/close?executor=github", nil).code)
	assert.Equal(t, []string{"github"}, s.Executors(), "an action makes no executor")
}
