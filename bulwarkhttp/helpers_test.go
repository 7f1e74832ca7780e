package bulwarkhttp_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is a stack for tests: three attempts with no backoff wait, a
// breaker that opens after three failed calls, a fallback cache, and
// idempotency.
func testConfig() pipeline.Config {
	return pipeline.Config{
		Idempotency: &pipeline.IdempotencyConfig{},
		Fallback:    &pipeline.FallbackConfig{},
		Breaker:     &breaker.Config{FailureThreshold: 3, RequestTimeout: 5 * time.Second},
		Retry:       &retry.Config{MaxAttempts: 3, NoWait: true},
	}
}

func newStack(t *testing.T, cfg pipeline.Config) *pipeline.Stack {
	t.Helper()
	s, err := pipeline.New(cfg)
	require.NoError(t, err)
	return s
}

// newClient returns a client through a Transport over stack with a Base
// of its own, whose idle connections are closed when the test ends.
func newClient(t *testing.T, stack *pipeline.Stack) (*http.Client, *bulwarkhttp.Transport) {
	t.Helper()
	base := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(base.CloseIdleConnections)
	tr := &bulwarkhttp.Transport{Base: base, Stack: stack}
	return tr.Client(), tr
}

// exchange is one request a scripted server received.
type exchange struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	At           time.Time
}

// server is an httptest.Server that answers its i-th request with
// script(i, w, r) and records what it received.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	seen []exchange
}

func newServer(t *testing.T, script func(i int, w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		i := len(s.seen)
		s.seen = append(s.seen, exchange{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()})
		s.mu.Unlock()
		script(i, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]exchange(nil), s.seen...)
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// statuses answers the i-th request with codes[i] (the last one after the
// end) and a body naming the attempt.
func statuses(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(i int, w http.ResponseWriter, _ *http.Request) {
		code := codes[min(i, len(codes)-1)]
		w.Header().Set("X-Attempt", itoa(i+1))
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "attempt "+itoa(i+1)+": "+http.StatusText(code))
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return string(b)
}

// rawServer is a loopback listener whose connections are served by
// handle(i, conn), i counting connections from 0. It counts the
// connections it accepted and those still open.
type rawServer struct {
	ln       net.Listener
	once     sync.Once
	accepted atomic.Int32
	open     atomic.Int32
	wg       sync.WaitGroup
}

func newRawServer(t *testing.T, handle func(i int, c net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(s.accepted.Add(1)) - 1
			s.open.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer s.open.Add(-1)
				defer c.Close()
				handle(i, c)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

// close stops accepting and waits for every connection's handler to
// return.
func (s *rawServer) close() {
	s.once.Do(func() {
		_ = s.ln.Close()
		s.wg.Wait()
	})
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

// readRequest reads one request's head (the tests' requests have no body).
func readRequest(c net.Conn) error {
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return err
		}
		if len(got) >= 4 && string(got[len(got)-4:]) == "\r\n\r\n" {
			return nil
		}
	}
}
