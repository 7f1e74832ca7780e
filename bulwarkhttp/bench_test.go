package bulwarkhttp_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// memoryBase answers every request with 200 and a 1 KiB body from
// memory, so that a benchmark measures the Transport's own cost without
// the network's noise.
type memoryBase struct{ body []byte }

func (m *memoryBase) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		Status:        "200 OK",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"text/plain"}},
		Body:          io.NopCloser(bytes.NewReader(m.body)),
		ContentLength: int64(len(m.body)),
		Request:       req,
	}, nil
}

// BenchmarkTransportOverhead is what a Transport adds to a request: a
// GET with a cancellable context through an in-memory Base, body read
// and closed, with no layers, a
// breaker and retry (the bench/ HTTPGet configuration), and Unreliable
// (fallback too, so each 200 is kept).
func BenchmarkTransportOverhead(b *testing.B) {
	base := &memoryBase{body: []byte(strings.Repeat("x", 1024))}
	for _, tc := range []struct {
		name string
		cfg  *pipeline.Config
	}{
		{"base-alone", nil},
		{"no-layers", &pipeline.Config{}},
		{"breaker-retry", &pipeline.Config{
			Breaker: &breaker.Config{RequestTimeout: 10 * time.Second},
			Retry:   &retry.Config{},
		}},
		{"unreliable", func() *pipeline.Config { c := pipeline.Unreliable(); return &c }()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var rt http.RoundTripper = base
			if tc.cfg != nil {
				s, err := pipeline.New(*tc.cfg)
				if err != nil {
					b.Fatal(err)
				}
				rt = &bulwarkhttp.Transport{Base: base, Stack: s}
			}
			// A cancellable context, like an HTTP request's (and the
			// bench/ rows').
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, "http://api.example/v1/pages/42", nil)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if n != 1024 {
					b.Fatal(n)
				}
			}
		})
	}
}
