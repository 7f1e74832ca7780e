package bulwarkhttp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCacheControlDirectives(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  int
	}{
		{nil, 0},
		{[]string{""}, 0},
		{[]string{"max-age=60"}, 0},
		{[]string{"no-store"}, ccNoStore},
		{[]string{"max-age=0,No-Store , must-revalidate"}, ccNoStore},
		{[]string{"public", "PRIVATE"}, ccPublic | ccPrivate},
		{[]string{`private="Set-Cookie, X-User", max-age=5`}, ccPrivate},
		{[]string{"no-storex, xprivate, public-ish"}, 0},
		{[]string{"s-maxage=60, must-revalidate, no-cache"}, 0},
	} {
		assert.Equal(t, c.want, cacheControl(c.lines), "%q", c.lines)
	}
}

// The key tells apart the negotiation headers' values and credentials,
// and is the old "GET <URL>" for a plain request.
func TestFallbackKey(t *testing.T) {
	key := func(keepPrivate bool, headers ...string) string {
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "http", Host: "h", Path: "/p", RawQuery: "q=1"}, Header: http.Header{}}
		for _, h := range headers {
			name, value, _ := strings.Cut(h, ": ")
			req.Header.Add(name, value)
		}
		rt := newRoundTrip(&Transport{KeepPrivate: keepPrivate}, req)
		return rt.fallbackKey()
	}
	assert.Equal(t, "GET http://h/p?q=1", key(false))
	assert.Equal(t, "GET http://h/p?q=1", key(false, "X-Request-Id: 1"), "other headers are not in the key")
	assert.Equal(t, "GET http://h/p?q=1\nAccept: a\nAccept-Language: de\nAccept-Language: en", key(false, "Accept-Language: de", "Accept: a", "Accept-Language: en"))
	assert.Equal(t, "GET http://h/p?q=1\ncredentials", key(false, "Authorization: Bearer alice"))
	assert.Equal(t, key(false, "Cookie: s=1"), key(false, "Authorization: Bearer alice"))

	alice := key(true, "Authorization: Bearer alice")
	assert.True(t, strings.HasPrefix(alice, "GET http://h/p?q=1\ncredentials: "), alice)
	assert.NotContains(t, alice, "alice", "the credentials are hashed")
	assert.Len(t, alice, len("GET http://h/p?q=1\ncredentials: ")+64)
	assert.NotEqual(t, alice, key(true, "Authorization: Bearer bob"))
	assert.NotEqual(t, alice, key(true, "Authorization: Bearer alice", "Cookie: s=1"))
	assert.NotEqual(t, key(true, "Cookie: Bearer alice"), alice, "the header's name is hashed with its value")
	assert.Equal(t, "GET http://h/p?q=1", key(true), "no credentials: the shared key")
}

// The checks on the response path allocate nothing.
func TestMayKeepAllocatesNothing(t *testing.T) {
	p := privacy{}
	h := http.Header{
		"Cache-Control": {"public, max-age=60"},
		"Vary":          {"Accept-Encoding, Origin"},
		"Content-Type":  {"application/json"},
	}
	var keep bool
	allocs := testing.AllocsPerRun(100, func() { keep, _ = p.mayKeep(h, false) })
	assert.True(t, keep)
	assert.Zero(t, allocs)
}

func BenchmarkMayKeep(b *testing.B) {
	p := privacy{}
	h := http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=60"}, "Vary": {"Accept-Encoding"}}
	b.ReportAllocs()
	for b.Loop() {
		p.mayKeep(h, false)
	}
}

// BenchmarkFallbackKey compares the key of a plain GET with the key the
// fallback had before (method, space, URL), in the same process.
func BenchmarkFallbackKey(b *testing.B) {
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "http", Host: "api.example", Path: "/v1/pages/42"}, Header: http.Header{}}
	rt := newRoundTrip(&Transport{}, req)
	b.Run("url-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = req.Method + " " + req.URL.String()
		}
	})
	b.Run("privacy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = rt.fallbackKey()
		}
	})
}
