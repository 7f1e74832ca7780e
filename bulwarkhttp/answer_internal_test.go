package bulwarkhttp

import (
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFallbackResponseAgeInWholeSeconds(t *testing.T) {
	received := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := &answer{StatusCode: 200, Status: "200 OK", Header: http.Header{"Etag": {`"1"`}}, Body: []byte("hi"), Received: received}
	for _, tc := range []struct {
		after time.Duration
		want  string
	}{{0, "0"}, {999 * time.Millisecond, "0"}, {12500 * time.Millisecond, "12"}, {-time.Second, "0"}} {
		r := a.fallbackResponse(nil, received.Add(tc.after))
		assert.Equal(t, tc.want, r.Header.Get(HeaderFallbackAge), tc.after)
		assert.Equal(t, `"1"`, r.Header.Get("Etag"))
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		assert.Equal(t, "hi", string(b))
		assert.Equal(t, int64(2), r.ContentLength)
	}
	assert.Empty(t, a.Header.Get(HeaderFallbackAge), "the kept copy is unchanged")
}

func TestReadBody(t *testing.T) {
	src := "0123456789"
	for _, tc := range []struct {
		limit, hint int64
		want        string
		complete    bool
	}{
		{10, -1, src, true}, {10, 10, src, true}, {100, 10, src, true},
		{9, -1, src, false}, {5, 10, "012345", false}, {0, -1, "0", false},
		{10, 3, src, true}, // a wrong hint only costs a grow
		// MaxBodyBytes = MaxInt64 ("keep every body"), and a lying
		// Content-Length as large: no overflow, no huge allocation.
		{math.MaxInt64, -1, src, true}, {math.MaxInt64, math.MaxInt64, src, true},
		{math.MaxInt64, 10, src, true},
	} {
		buf, complete, err := readBody(&oneByteReader{s: src}, tc.limit, tc.hint)
		require.NoError(t, err)
		assert.Equal(t, tc.want, string(buf), "limit %d hint %d", tc.limit, tc.hint)
		assert.Equal(t, tc.complete, complete, "limit %d hint %d", tc.limit, tc.hint)
		assert.LessOrEqual(t, cap(buf), DefaultMaxBodyBytes+1, "limit %d hint %d", tc.limit, tc.hint)
	}
}

type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}
