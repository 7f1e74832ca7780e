package bulwarkhttp_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
)

// privateSite is a server whose GET answers with the response headers
// given and a body naming the caller (its Authorization, Cookie and
// Accept-Language), until it is taken down: then every request gets a
// 503.
type privateSite struct {
	*server
	down atomic.Bool
}

func newPrivateSite(t *testing.T, respHeader http.Header) *privateSite {
	t.Helper()
	s := &privateSite{}
	s.server = newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "down")
			return
		}
		for k, v := range respHeader {
			w.Header()[k] = v
		}
		_, _ = io.WriteString(w, "for "+r.Header.Get("Authorization")+"|"+r.Header.Get("Cookie")+"|"+r.Header.Get("Accept-Language"))
	})
	return s
}

// privateClient is a client through a Transport over a stack with a
// fallback, whose breaker does not open during a test.
func privateClient(t *testing.T, keepPrivate bool) *http.Client {
	t.Helper()
	cfg := testConfig()
	cfg.Breaker.FailureThreshold = 1000
	client, tr := newClient(t, newStack(t, cfg))
	tr.KeepPrivate = keepPrivate
	return client
}

// getWith sends a GET of url with the request headers given as
// "Name: value" pairs, and returns the status, the body and whether the
// response came from the fallback.
func getWith(t *testing.T, client *http.Client, url string, headers ...string) (status int, body string, fromFallback bool, resp *http.Response) {
	t.Helper()
	ctx, report := bulwark.WithReport(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ": ")
		require.True(t, ok, h)
		req.Header.Add(name, value)
	}
	resp, err = client.Do(req)
	require.NoError(t, err)
	body = readAll(t, resp)
	assert.Equal(t, report.FromCache(), resp.Header.Get(bulwarkhttp.HeaderFallbackAge) != "", "the report and the header agree")
	return resp.StatusCode, body, report.FromCache(), resp
}

// The reviewer's repro: alice GETs /me with her Authorization, the server
// goes down, bob's GET /me must not be answered with alice's response
// (nor anyone's: a response to an authorized request is not kept).
func TestFallbackDoesNotServeOneUsersResponseToAnother(t *testing.T) {
	site := newPrivateSite(t, http.Header{"Cache-Control": {"private, no-store"}})
	client := privateClient(t, false)

	status, body, _, _ := getWith(t, client, site.URL+"/me", "Authorization: Bearer alice")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "for Bearer alice||", body)

	site.down.Store(true)
	for _, who := range []string{"Bearer bob", "Bearer alice"} {
		status, body, fromFallback, _ := getWith(t, client, site.URL+"/me", "Authorization: "+who)
		assert.Equal(t, http.StatusServiceUnavailable, status, who)
		assert.Equal(t, "down", body, who)
		assert.False(t, fromFallback, who)
	}
}

// Each rule of what the fallback keeps, without and with KeepPrivate:
// the first GET (from the server) is kept or not; with the server down,
// the same request is answered from the copy only if it was kept, and a
// request with other credentials never gets a private copy.
func TestFallbackPrivacyRules(t *testing.T) {
	type want struct {
		kept    bool // the same request, server down, gets the copy
		toOther bool // bob's request (same headers, other credentials) gets it
	}
	cases := []struct {
		name       string
		reqHeaders []string // alice's; bob's replaces "alice" by "bob"
		respHeader http.Header
		shared     want // KeepPrivate false
		private    want // KeepPrivate true
	}{
		{name: "public page, no credentials", shared: want{true, true}, private: want{true, true}},
		{
			name:       "Authorization",
			reqHeaders: []string{"Authorization: Bearer alice"},
			shared:     want{false, false}, private: want{true, false},
		},
		{
			name:       "Authorization, response public",
			reqHeaders: []string{"Authorization: Bearer alice"},
			respHeader: http.Header{"Cache-Control": {"public, max-age=60"}},
			shared:     want{true, true}, private: want{true, false},
		},
		{
			name:       "Authorization, response must-revalidate (needs revalidation the fallback cannot do)",
			reqHeaders: []string{"Authorization: Bearer alice"},
			respHeader: http.Header{"Cache-Control": {"must-revalidate"}},
			shared:     want{false, false}, private: want{true, false},
		},
		{
			name:       "Authorization, response s-maxage",
			reqHeaders: []string{"Authorization: Bearer alice"},
			respHeader: http.Header{"Cache-Control": {"s-maxage=60"}},
			shared:     want{false, false}, private: want{true, false},
		},
		{
			name:       "Cookie",
			reqHeaders: []string{"Cookie: session=alice"},
			shared:     want{false, false}, private: want{true, false},
		},
		{
			name:       "response private",
			respHeader: http.Header{"Cache-Control": {"max-age=60", "Private"}},
			shared:     want{false, false}, private: want{true, true},
		},
		{
			name:       "response private with field names",
			respHeader: http.Header{"Cache-Control": {`private="X-User, X-Plan"`}},
			shared:     want{false, false}, private: want{true, true},
		},
		{
			name:       "response no-store",
			respHeader: http.Header{"Cache-Control": {"max-age=0, No-Store"}},
			shared:     want{false, false}, private: want{false, false},
		},
		{
			name:       "response no-store, request with credentials",
			reqHeaders: []string{"Authorization: Bearer alice"},
			respHeader: http.Header{"Cache-Control": {"no-store"}},
			shared:     want{false, false}, private: want{false, false},
		},
		{
			name:       "request no-store",
			reqHeaders: []string{"Cache-Control: no-store"},
			shared:     want{false, false}, private: want{false, false},
		},
		{
			name:       "Set-Cookie",
			respHeader: http.Header{"Set-Cookie": {"session=s1; HttpOnly"}},
			shared:     want{false, false}, private: want{true, true},
		},
		{
			name:       "Vary: *",
			respHeader: http.Header{"Vary": {"*"}},
			shared:     want{false, false}, private: want{false, false},
		},
		{
			name:       "Vary on a header the key does not tell apart",
			respHeader: http.Header{"Vary": {"Accept-Encoding, X-Tenant"}},
			shared:     want{false, false}, private: want{false, false},
		},
		{
			name:       "Vary on negotiation headers",
			respHeader: http.Header{"Vary": {"accept-encoding", "Accept, Origin"}},
			shared:     want{true, true}, private: want{true, true},
		},
		{
			name:       "Vary: Authorization on an anonymous request",
			respHeader: http.Header{"Vary": {"Authorization"}},
			shared:     want{true, true}, private: want{true, true},
		},
		{
			name:       "Vary: Authorization, response public",
			reqHeaders: []string{"Authorization: Bearer alice"},
			respHeader: http.Header{"Cache-Control": {"public"}, "Vary": {"Authorization"}},
			shared:     want{false, false}, private: want{true, false},
		},
		{
			name:       "Vary: Cookie, request with a cookie",
			reqHeaders: []string{"Cookie: session=alice"},
			respHeader: http.Header{"Vary": {"Cookie"}},
			shared:     want{false, false}, private: want{true, false},
		},
	}
	for _, c := range cases {
		for _, keepPrivate := range []bool{false, true} {
			w := c.shared
			if keepPrivate {
				w = c.private
			}
			name := c.name
			if keepPrivate {
				name += "/KeepPrivate"
			}
			t.Run(name, func(t *testing.T) {
				site := newPrivateSite(t, c.respHeader)
				client := privateClient(t, keepPrivate)
				bob := make([]string, len(c.reqHeaders))
				for i, h := range c.reqHeaders {
					bob[i] = strings.ReplaceAll(h, "alice", "bob")
				}

				status, first, _, _ := getWith(t, client, site.URL+"/me", c.reqHeaders...)
				require.Equal(t, http.StatusOK, status)
				site.down.Store(true)

				status, body, fromFallback, _ := getWith(t, client, site.URL+"/me", c.reqHeaders...)
				assert.Equal(t, w.kept, fromFallback, "the same request")
				if w.kept {
					assert.Equal(t, first, body)
				} else {
					assert.Equal(t, http.StatusServiceUnavailable, status)
				}

				status, body, fromFallback, _ = getWith(t, client, site.URL+"/me", bob...)
				assert.Equal(t, w.toOther, fromFallback, "another user's request")
				if w.toOther {
					assert.Equal(t, first, body)
				} else {
					assert.Equal(t, http.StatusServiceUnavailable, status)
					assert.Equal(t, "down", body)
				}
			})
		}
	}
}

// A copy kept for a request with credentials is not served to one
// without, nor the other way round, even when the response said public:
// the two may get different representations from the server.
func TestFallbackKeepsRequestsWithAndWithoutCredentialsApart(t *testing.T) {
	site := newPrivateSite(t, http.Header{"Cache-Control": {"public"}})
	client := privateClient(t, false)

	_, _, _, _ = getWith(t, client, site.URL+"/a", "Authorization: Bearer alice")
	_, _, _, _ = getWith(t, client, site.URL+"/b")
	site.down.Store(true)

	status, _, fromFallback, _ := getWith(t, client, site.URL+"/a")
	assert.Equal(t, http.StatusServiceUnavailable, status, "anonymous: alice's copy is not served")
	assert.False(t, fromFallback)
	status, _, fromFallback, _ = getWith(t, client, site.URL+"/b", "Authorization: Bearer bob")
	assert.Equal(t, http.StatusServiceUnavailable, status, "bob: the anonymous copy is not served")
	assert.False(t, fromFallback)

	status, body, fromFallback, _ := getWith(t, client, site.URL+"/a", "Authorization: Bearer carol")
	assert.True(t, fromFallback, "public: any request with credentials gets it")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "for Bearer alice||", body)
}

// Vary (RFC 9111 §4.1): copies of one URL are kept per value of the
// negotiation headers the response varies on, and each is served only to
// a request with the same values.
func TestFallbackServesACopyOnlyToARequestItMatches(t *testing.T) {
	site := newPrivateSite(t, http.Header{"Vary": {"Accept-Language"}})
	client := privateClient(t, false)

	_, de, _, _ := getWith(t, client, site.URL+"/page", "Accept-Language: de")
	_, en, _, _ := getWith(t, client, site.URL+"/page", "Accept-Language: en")
	require.Equal(t, "for ||de", de)
	require.Equal(t, "for ||en", en)
	site.down.Store(true)

	_, body, fromFallback, _ := getWith(t, client, site.URL+"/page", "Accept-Language: de")
	assert.True(t, fromFallback)
	assert.Equal(t, de, body)
	_, body, fromFallback, _ = getWith(t, client, site.URL+"/page", "Accept-Language: en")
	assert.True(t, fromFallback)
	assert.Equal(t, en, body)
	for _, other := range [][]string{{"Accept-Language: fr"}, nil, {"Accept-Language: de", "Accept-Language: en"}} {
		status, body, fromFallback, _ := getWith(t, client, site.URL+"/page", other...)
		assert.False(t, fromFallback, "%q", other)
		assert.Equal(t, http.StatusServiceUnavailable, status, "%q", other)
		assert.Equal(t, "down", body, "%q", other)
	}
}

// With KeepPrivate a response that sets a cookie is kept without its
// Set-Cookie: the copy never sets a cookie. Each user's copy goes to
// that user only.
func TestKeepPrivateDropsSetCookieAndKeepsUsersApart(t *testing.T) {
	site := newPrivateSite(t, http.Header{"Set-Cookie": {"csrf=c1"}, "Cache-Control": {"private"}})
	client := privateClient(t, true)

	_, alice, _, resp := getWith(t, client, site.URL+"/me", "Authorization: Bearer alice")
	assert.Equal(t, "csrf=c1", resp.Header.Get("Set-Cookie"), "the caller's own response is untouched")
	_, bob, _, _ := getWith(t, client, site.URL+"/me", "Authorization: Bearer bob")
	site.down.Store(true)

	_, body, fromFallback, resp := getWith(t, client, site.URL+"/me", "Authorization: Bearer alice")
	assert.True(t, fromFallback)
	assert.Equal(t, alice, body)
	assert.Empty(t, resp.Header.Values("Set-Cookie"))
	assert.Equal(t, "private", resp.Header.Get("Cache-Control"))
	_, body, fromFallback, _ = getWith(t, client, site.URL+"/me", "Authorization: Bearer bob")
	assert.True(t, fromFallback)
	assert.Equal(t, bob, body)
	status, _, fromFallback, _ := getWith(t, client, site.URL+"/me", "Authorization: Bearer mallory")
	assert.False(t, fromFallback)
	assert.Equal(t, http.StatusServiceUnavailable, status)
}

// A GET with an Idempotency-Key whose response sets a cookie is replayed
// whole by the idempotency layer, so even with KeepPrivate the fallback
// keeps nothing of it (it could keep only a copy without the cookie).
func TestKeepPrivateSetCookieWithIdempotencyKeyIsNotKeptForTheFallback(t *testing.T) {
	site := newPrivateSite(t, http.Header{"Set-Cookie": {"csrf=c1"}})
	client := privateClient(t, true)

	_, _, _, _ = getWith(t, client, site.URL+"/me", "Idempotency-Key: k1")
	_, _, _, resp := getWith(t, client, site.URL+"/me", "Idempotency-Key: k1")
	assert.Equal(t, "true", resp.Header.Get(bulwarkhttp.HeaderReplayed))
	assert.Equal(t, "csrf=c1", resp.Header.Get("Set-Cookie"), "the replay is whole")
	site.down.Store(true)

	status, _, fromFallback, _ := getWith(t, client, site.URL+"/me", "Idempotency-Key: k2")
	assert.False(t, fromFallback)
	assert.Equal(t, http.StatusServiceUnavailable, status)
}

// The ordinary case still works: a public page whose response varies on
// Accept-Encoding (http.Transport asks for gzip and decodes it on its
// own) is kept and served to the next plain GET.
func TestFallbackStillServesOrdinaryPublicGets(t *testing.T) {
	site := newPrivateSite(t, http.Header{"Vary": {"Accept-Encoding"}, "Cache-Control": {"max-age=0, must-revalidate"}, "ETag": {`"e1"`}})
	client := privateClient(t, false)

	_, first, _, _ := getWith(t, client, site.URL+"/pages/1?x=1")
	site.down.Store(true)
	status, body, fromFallback, resp := getWith(t, client, site.URL+"/pages/1?x=1")
	assert.True(t, fromFallback)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, first, body)
	assert.Equal(t, `"e1"`, resp.Header.Get("ETag"))
	status, _, _, _ = getWith(t, client, site.URL+"/pages/1?x=2")
	assert.Equal(t, http.StatusServiceUnavailable, status, "another query is another URL")
}

// An Idempotency-Key is scoped to the credentials it was first sent
// with: another user's duplicate (same key, same body) fails with
// idempotency.ErrKeyReuse and reaches neither the server nor the stored
// response; the first user's duplicate is replayed; without credentials
// nothing changes.
func TestIdempotencyKeyIsScopedToItsCredentials(t *testing.T) {
	srv := newServer(t, func(i int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "order for "+r.Header.Get("Authorization")+r.Header.Get("Cookie"))
	})
	client, _ := newClient(t, newStack(t, testConfig()))
	post := func(key string, headers ...string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/orders", strings.NewReader(`{"sku":"42"}`))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", key)
		for _, h := range headers {
			name, value, _ := strings.Cut(h, ": ")
			req.Header.Add(name, value)
		}
		return client.Do(req)
	}

	for _, c := range []struct{ name, alice, bob string }{
		{"Authorization", "Authorization: Bearer alice", "Authorization: Bearer bob"},
		{"Cookie", "Cookie: session=alice", "Cookie: session=bob"},
		{"credentials against none", "Authorization: Bearer alice", "X-None: x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := "order-" + c.name
			resp, err := post(key, c.alice)
			require.NoError(t, err)
			first := readAll(t, resp)
			require.Equal(t, http.StatusCreated, resp.StatusCode)
			before := srv.count()

			resp, err = post(key, c.bob)
			require.ErrorIs(t, err, idempotency.ErrKeyReuse)
			assert.Contains(t, err.Error(), "other credentials (Authorization, Cookie)")
			assert.Nil(t, resp)
			assert.Equal(t, before, srv.count(), "nothing sent")

			resp, err = post(key, c.alice)
			require.NoError(t, err)
			assert.Equal(t, "true", resp.Header.Get(bulwarkhttp.HeaderReplayed))
			assert.Equal(t, first, readAll(t, resp))
			assert.Equal(t, before, srv.count())
		})
	}

	t.Run("no credentials", func(t *testing.T) {
		resp, err := post("anonymous")
		require.NoError(t, err)
		first := readAll(t, resp)
		before := srv.count()
		resp, err = post("anonymous")
		require.NoError(t, err)
		assert.Equal(t, "true", resp.Header.Get(bulwarkhttp.HeaderReplayed))
		assert.Equal(t, first, readAll(t, resp))
		assert.Equal(t, before, srv.count())
	})
}

// A duplicate from another user that arrives while the first request is
// still in flight does not join it: it fails with ErrKeyReuse at once,
// and only the first request reaches the server.
func TestIdempotencyInFlightIsNotSharedAcrossCredentials(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "order for "+r.Header.Get("Authorization"))
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server closes, also when the test fails
	client, _ := newClient(t, newStack(t, testConfig()))
	post := func(ctx context.Context, who string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/orders", strings.NewReader(`{"sku":"42"}`))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", "same")
		req.Header.Set("Authorization", who)
		return client.Do(req)
	}
	type result struct {
		body string
		err  error
	}
	first := make(chan result, 1)
	go func() {
		resp, err := post(t.Context(), "Bearer alice")
		if err != nil {
			first <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		first <- result{body: string(b), err: err}
	}()
	require.Eventually(t, func() bool { return srv.count() == 1 }, 2*time.Second, time.Millisecond)

	// Bounded, so that joining alice's flight (the fault) fails the test
	// instead of hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	resp, err := post(ctx, "Bearer bob")
	require.ErrorIs(t, err, idempotency.ErrKeyReuse)
	assert.Nil(t, resp)

	unblock()
	r := <-first
	require.NoError(t, r.err)
	assert.Equal(t, "order for Bearer alice", r.body)
	assert.Equal(t, 1, srv.count())
}
