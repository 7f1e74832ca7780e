package bulwarkhttp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
)

// A final answer whose body breaks off is still the caller's response,
// and its body ends with the read error whether it is read with
// io.ReadAll or with io.Copy (which takes the body's WriteTo).
func TestBrokenBodyOfAFinalAnswerEndsWithTheError(t *testing.T) {
	for _, tc := range []struct {
		name string
		read func(io.Reader) (string, error)
	}{
		{"io.ReadAll", func(r io.Reader) (string, error) { b, err := io.ReadAll(r); return string(b), err }},
		{"io.Copy", func(r io.Reader) (string, error) {
			var b bytes.Buffer
			_, err := io.Copy(&b, r)
			return b.String(), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(_ int, c net.Conn) {
				if readRequest(c) != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 100))
				time.Sleep(10 * time.Millisecond) // let the client read the head
				_ = c.Close()
			})
			client, _ := newClient(t, newStack(t, testConfig()))
			resp, err := client.Get(srv.url() + "/gone")
			require.NoError(t, err)
			assert.Equal(t, http.StatusNotFound, resp.StatusCode)
			got, err := tc.read(resp.Body)
			assert.Error(t, err, "the body was cut short")
			assert.Equal(t, strings.Repeat("x", 100), got)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, int32(1), srv.accepted.Load(), "a final answer is not retried")
		})
	}
}

// Buffered bodies share buffers from the Transport's pool once closed:
// each response still reads its own bytes, and a closed body cannot be
// read, so that it never sees the bytes of a later response.
func TestBufferedBodiesReadTheirOwnBytes(t *testing.T) {
	srv := newServer(t, func(i int, w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, "response %d %s", i, strings.Repeat("x", i*100))
	})
	client, _ := newClient(t, newStack(t, testConfig()))
	var closed []*http.Response
	for i := range 20 {
		resp, err := client.Get(srv.URL + "/n")
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("response %d %s", i, strings.Repeat("x", i*100)), readAll(t, resp))
		closed = append(closed, resp)
	}
	for i, resp := range closed {
		n, err := resp.Body.Read(make([]byte, 10))
		assert.Zero(t, n, "response %d", i)
		assert.ErrorContains(t, err, "closed", "response %d: read after Close", i)
	}
}

// A key attached to the request's context (idempotency.WithKey) instead
// of the Idempotency-Key header also makes the idempotency layer keep the
// response: the kept copy is its own, so that neither the caller's
// changes to the headers nor the buffers lent to later responses change
// what a duplicate gets.
func TestResponseKeptUnderAContextKeyIsItsOwn(t *testing.T) {
	srv := newServer(t, func(i int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-N", itoa(i))
		_, _ = fmt.Fprintf(w, "body %d %s", i, strings.Repeat("y", 1000))
	})
	stack := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	client, _ := newClient(t, stack)
	get := func(ctx context.Context) *http.Response {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/k", nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		return resp
	}
	keyed := idempotency.WithKey(t.Context(), "order-7")
	first := get(keyed)
	first.Header.Set("X-N", "changed by the caller")
	want := "body 0 " + strings.Repeat("y", 1000)
	assert.Equal(t, want, readAll(t, first))
	for range 3 { // other responses, read into the buffers lent again
		readAll(t, get(t.Context()))
	}
	dup := get(keyed)
	assert.Equal(t, "true", dup.Header.Get(bulwarkhttp.HeaderReplayed))
	assert.Equal(t, "0", dup.Header.Get("X-N"))
	assert.Equal(t, want, readAll(t, dup))
	assert.Equal(t, 4, srv.count())
}
