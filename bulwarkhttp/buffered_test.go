package bulwarkhttp_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
