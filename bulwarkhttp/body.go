package bulwarkhttp

import (
	"io"
	"net/http"
	"strings"
)

// readBody reads r until EOF, keeping at most limit bytes: it returns the
// bytes with complete true when r ended within the limit, and limit+1
// bytes with complete false when it did not (the rest is left in r).
// hint is the expected length, -1 if unknown. A read error is returned
// with the bytes read before it.
func readBody(r io.Reader, limit, hint int64) (buf []byte, complete bool, err error) {
	return readBodyInto(r, make([]byte, 0, readSize(limit, hint)), limit)
}

// readSize is the capacity readBody starts with: room for a body of
// length hint and its EOF, or 512 bytes when the length is unknown, never
// more than limit+1, and at most DefaultMaxBodyBytes+1 whatever the hint
// says (a larger body grows the buffer as its bytes arrive, so that a
// Content-Length that lies costs no allocation of its size).
func readSize(limit, hint int64) int {
	n := int64(511)
	if hint >= 0 && hint <= limit {
		n = hint
	}
	return int(min(n, limit, DefaultMaxBodyBytes)) + 1
}

// readBodyInto is readBody reading into buf (from its length on), which it
// grows as needed.
func readBodyInto(r io.Reader, buf []byte, limit int64) (_ []byte, complete bool, err error) {
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, false, nil
			}
			buf = append(buf, 0)[:len(buf)] // grow
		}
		room := buf[len(buf):cap(buf)]
		if rest := limit - int64(len(buf)); int64(len(room))-1 > rest {
			room = room[:rest+1] // at most limit+1 bytes in all
		}
		n, err := r.Read(room)
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, int64(len(buf)) <= limit, nil
		case err != nil:
			return buf, false, err
		case int64(len(buf)) > limit:
			return buf, false, nil
		}
	}
}

// streamed reports whether resp's body should be handed to the caller as
// a stream, without reading it inside the attempt.
func streamed(resp *http.Response, limit int64) bool {
	if limit < 0 || resp.ContentLength > limit {
		return true
	}
	ct := headerValue(resp.Header, "Content-Type")
	return len(ct) >= len("text/event-stream") && strings.EqualFold(ct[:len("text/event-stream")], "text/event-stream")
}

// liveBody is a response body streamed to the caller: the bytes already
// read (prefix), then the rest from the connection. Closing it, or
// reading it to its end, ends the call's context if the body kept it
// alive (see callcontext.go), so that the body can be read after the call
// returned.
//
// Read is not safe for concurrent use (as for any body); Close may be
// called while a Read blocks, to abort it.
type liveBody struct {
	prefix []byte
	rc     io.ReadCloser
	rt     *roundTrip
	ended  bool // under rt.mu
}

// end lets the call's context go, if the body kept it alive.
func (b *liveBody) end() { b.rt.bodyEnded(b) }

func (b *liveBody) Read(p []byte) (int, error) {
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.end() // the connection is back in the pool
	}
	return n, err
}

// Close closes the connection's body and lets the call's context go.
func (b *liveBody) Close() error {
	err := b.rc.Close()
	b.end()
	return err
}

// drain reads at most drainLimit more bytes, so that the connection can
// be reused, and closes the body.
func (b *liveBody) drain() {
	_, _ = io.CopyN(io.Discard, b.rc, drainLimit)
	_ = b.Close()
}

// headerValue is h.Get(key) for a key already in canonical form (such as
// "Content-Type"), without canonicalizing it again: Get's cost on every
// request was measurable.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// closeRequestBody closes req's body, as a RoundTripper must even when it
// sends nothing.
func closeRequestBody(req *http.Request) {
	if req != nil && req.Body != nil {
		_ = req.Body.Close()
	}
}
