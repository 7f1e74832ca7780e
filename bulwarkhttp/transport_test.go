package bulwarkhttp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
)

// 503, 503, 200 with a 400 KB body: readable in full after RoundTrip
// returned, 3 requests seen.
func TestTransientStatusesRetriedAndTheLastBodyIsReadable(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 400*1024/16)
	for _, tc := range []struct {
		name  string
		limit int64
	}{
		{"buffered", 0},
		{"streamed past MaxBodyBytes", 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(i int, w http.ResponseWriter, _ *http.Request) {
				if i < 2 {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = io.WriteString(w, "busy")
					return
				}
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = w.Write(big)
			})
			client, tr := newClient(t, newStack(t, testConfig()))
			tr.MaxBodyBytes = tc.limit
			ctx, report := bulwark.WithReport(t.Context())
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/file", nil)
			require.NoError(t, err)

			resp, err := client.Do(req)
			require.NoError(t, err)
			// The call through the layers has returned: its contexts
			// ended. The body must still be readable in full.
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
			// The transport reacts to a cancelled context on its own
			// goroutine: give it the time to, were the body tied to the
			// layers' context.
			time.Sleep(20 * time.Millisecond)
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, len(big), len(got))
			assert.True(t, bytes.Equal(big, got))
			assert.Equal(t, 3, srv.count())
			assert.Equal(t, 3, report.Attempts())
		})
	}
}

// POST with a JSON body and an Idempotency-Key, first answered 503: the
// server receives the whole body twice; a duplicate POST with the same
// key is replayed without a request.
func TestIdempotentPostResentInFullThenReplayed(t *testing.T) {
	const payload = `{"parent":{"page_id":"42"},"properties":{"title":"Launch plan"}}`
	srv := newServer(t, func(i int, w http.ResponseWriter, _ *http.Request) {
		if i == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/v1/pages/7")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"7"}`)
	})
	client, _ := newClient(t, newStack(t, testConfig()))
	post := func(body string) *http.Request {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/pages", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "create-launch-plan-1")
		return req
	}

	resp, err := client.Do(post(payload))
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.JSONEq(t, `{"id":"7"}`, readAll(t, resp))
	assert.Empty(t, resp.Header.Get(bulwarkhttp.HeaderReplayed))
	seen := srv.requests()
	require.Len(t, seen, 2)
	for _, ex := range seen {
		assert.Equal(t, payload, string(ex.Body), "the whole body, on every attempt")
		assert.Equal(t, "create-launch-plan-1", ex.Header.Get("Idempotency-Key"), "forwarded unchanged")
	}

	ctx, report := bulwark.WithReport(t.Context())
	resp, err = client.Do(post(payload).WithContext(ctx))
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "/v1/pages/7", resp.Header.Get("Location"))
	assert.Equal(t, "true", resp.Header.Get(bulwarkhttp.HeaderReplayed))
	assert.JSONEq(t, `{"id":"7"}`, readAll(t, resp))
	assert.True(t, report.Replayed())
	assert.Equal(t, 2, srv.count(), "replayed without a request")

	// The same key with another body is refused, and nothing is sent.
	_, err = client.Do(post(`{"other":true}`))
	require.ErrorIs(t, err, idempotency.ErrKeyReuse)
	assert.Equal(t, 2, srv.count())
}

// POST without a key answered 503: one request, the caller gets the 503.
func TestPostWithoutKeySentOnce(t *testing.T) {
	srv := newServer(t, statuses(503, 200))
	client, _ := newClient(t, newStack(t, testConfig()))
	resp, err := client.Post(srv.URL+"/v1/comments", "application/json", strings.NewReader(`{"text":"hi"}`))
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "attempt 1: Service Unavailable", readAll(t, resp))
	assert.Equal(t, 1, srv.count())
	assert.Equal(t, `{"text":"hi"}`, string(srv.requests()[0].Body))
}

// 404 ten times: ten 404 responses with their bodies, ten requests,
// circuit CLOSED.
func TestFinalAnswersAreResponsesAndDoNotOpenTheCircuit(t *testing.T) {
	srv := newServer(t, statuses(404))
	stack := newStack(t, testConfig())
	client, _ := newClient(t, stack)
	for i := range 10 {
		resp, err := client.Get(srv.URL + "/v1/pages/missing")
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Equal(t, "attempt "+itoa(i+1)+": Not Found", readAll(t, resp))
	}
	assert.Equal(t, 10, srv.count())
	b := stack.Breaker(srv.Listener.Addr().String())
	require.NotNil(t, b)
	assert.Equal(t, breaker.Closed, b.State())
	assert.Equal(t, int64(10), b.Stats().FinalAnswers)
}

// A host that keeps answering 503 opens its circuit; the next call fails
// with bulwark.ErrRejected and no request; another host is unaffected.
func TestFailingHostOpensItsOwnCircuitOnly(t *testing.T) {
	down := newServer(t, statuses(503))
	up := newServer(t, statuses(200))
	stack := newStack(t, testConfig())
	client, _ := newClient(t, stack)

	for range 3 { // FailureThreshold calls, 3 attempts each
		resp, err := client.Get(down.URL + "/v1/users")
		require.NoError(t, err, "a status is a response")
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		readAll(t, resp)
	}
	assert.Equal(t, 9, down.count())
	assert.Equal(t, breaker.Open, stack.Breaker(down.Listener.Addr().String()).State())

	ctx, report := bulwark.WithReport(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, down.URL+"/v1/users", strings.NewReader("{}"))
	_, err := client.Do(req)
	require.ErrorIs(t, err, bulwark.ErrRejected)
	require.ErrorIs(t, err, breaker.ErrOpen)
	assert.True(t, report.Rejected())
	assert.Equal(t, 9, down.count(), "the server was not contacted")

	resp, err := client.Get(up.URL + "/v1/users")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	readAll(t, resp)
	assert.Equal(t, breaker.Closed, stack.Breaker(up.Listener.Addr().String()).State())
}

func TestNilStackIsInvalidOnEveryRequest(t *testing.T) {
	srv := newServer(t, statuses(200))
	tr := &bulwarkhttp.Transport{}
	for range 2 {
		body := &closeRecorder{Reader: strings.NewReader("x")}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, body)
		_, err := tr.RoundTrip(req)
		require.ErrorIs(t, err, pipeline.ErrInvalid)
		assert.ErrorContains(t, err, "Stack")
		assert.True(t, body.closed, "the request body is closed")
	}
	_, err := (&bulwarkhttp.Transport{Stack: newStack(t, testConfig())}).RoundTrip(nil)
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	assert.Zero(t, srv.count())
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// Executors made on demand are bounded: a host beyond the bound gets an
// error and is not contacted; configured executors do not count.
func TestExecutorsMadeOnDemandAreBounded(t *testing.T) {
	a, b, c := newServer(t, statuses(200)), newServer(t, statuses(200)), newServer(t, statuses(200))
	stack := newStack(t, testConfig())
	require.NoError(t, stack.SetMaxOnDemand(1))
	require.NoError(t, stack.Configure(c.Listener.Addr().String(), testConfig()))
	client, _ := newClient(t, stack)

	for _, srv := range []*server{a, c} {
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		readAll(t, resp)
	}
	_, err := client.Get(b.URL)
	require.ErrorIs(t, err, pipeline.ErrUnknownExecutor)
	assert.ErrorContains(t, err, b.Listener.Addr().String())
	assert.Zero(t, b.count())
}

func TestExecutorFunctionNamesTheExecutor(t *testing.T) {
	srv := newServer(t, statuses(200))
	stack := newStack(t, testConfig())
	client, tr := newClient(t, stack)
	tr.Executor = func(*http.Request) string { return "notion" }
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, []string{"notion"}, stack.Executors())

	tr.Executor = func(*http.Request) string { return "" }
	_, err = client.Get(srv.URL)
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	assert.Equal(t, 1, srv.count())
}

func TestPerRequestAttempts(t *testing.T) {
	client, _ := newClient(t, newStack(t, testConfig()))
	for _, tc := range []struct {
		name   string
		method string
		ctx    func(context.Context) context.Context
		want   int
	}{
		{"GET default", http.MethodGet, func(c context.Context) context.Context { return c }, 3},
		{"GET WithNoRetry", http.MethodGet, bulwarkhttp.WithNoRetry, 1},
		{"GET WithAttempts(5)", http.MethodGet, func(c context.Context) context.Context { return bulwarkhttp.WithAttempts(c, 5) }, 5},
		{"POST WithAttempts(2) opts in", http.MethodPost, func(c context.Context) context.Context { return bulwarkhttp.WithAttempts(c, 2) }, 2},
		{"PATCH default", http.MethodPatch, func(c context.Context) context.Context { return c }, 1},
		{"PUT default", http.MethodPut, func(c context.Context) context.Context { return c }, 3},
		{"DELETE default", http.MethodDelete, func(c context.Context) context.Context { return c }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, statuses(502))
			req, _ := http.NewRequestWithContext(tc.ctx(t.Context()), tc.method, srv.URL, strings.NewReader("body"))
			resp, err := client.Do(req)
			require.NoError(t, err)
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
			assert.Equal(t, "attempt "+itoa(tc.want)+": Bad Gateway", readAll(t, resp))
			assert.Equal(t, tc.want, srv.count())
			for _, ex := range srv.requests() {
				assert.Equal(t, "body", string(ex.Body))
			}
		})
	}

	srv := newServer(t, statuses(200))
	req, _ := http.NewRequestWithContext(bulwarkhttp.WithAttempts(t.Context(), 0), http.MethodGet, srv.URL, nil)
	_, err := client.Do(req)
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	assert.ErrorContains(t, err, "WithAttempts")
	assert.Zero(t, srv.count())
}

// A body without GetBody cannot be sent again: the request is sent once,
// even a PUT.
func TestUnreplayableBodySentOnce(t *testing.T) {
	srv := newServer(t, statuses(503, 200))
	client, _ := newClient(t, newStack(t, testConfig()))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL, io.MultiReader(strings.NewReader("stream")))
	require.Nil(t, req.GetBody)
	resp, err := client.Do(req)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	readAll(t, resp)
	assert.Equal(t, 1, srv.count())
	assert.Equal(t, "stream", string(srv.requests()[0].Body))
}

// An idempotent request whose body has no GetBody is read (within the
// limit) to fingerprint it, and is then replayable.
func TestIdempotentBodyWithoutGetBodyIsFingerprintedAndResent(t *testing.T) {
	srv := newServer(t, statuses(503, 200))
	client, _ := newClient(t, newStack(t, testConfig()))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, io.MultiReader(strings.NewReader(`{"a":1}`)))
	req.Header.Set("Idempotency-Key", "k1")
	resp, err := client.Do(req)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	readAll(t, resp)
	require.Equal(t, 2, srv.count())
	for _, ex := range srv.requests() {
		assert.Equal(t, `{"a":1}`, string(ex.Body))
	}
}

// An idempotent response larger than MaxBodyBytes is streamed to the
// request that ran; a duplicate gets its status and headers, no body.
func TestIdempotentResponseOverTheLimitIsNotStored(t *testing.T) {
	big := strings.Repeat("x", 10_000)
	srv := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Id", "9")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, big)
	})
	client, tr := newClient(t, newStack(t, testConfig()))
	tr.MaxBodyBytes = 1000
	post := func() *http.Request {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader("{}"))
		req.Header.Set("Idempotency-Key", "big")
		return req
	}
	resp, err := client.Do(post())
	require.NoError(t, err)
	assert.Equal(t, big, readAll(t, resp))

	resp, err = client.Do(post())
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "9", resp.Header.Get("X-Id"))
	assert.Equal(t, "true", resp.Header.Get(bulwarkhttp.HeaderReplayed))
	assert.Equal(t, "true", resp.Header.Get(bulwarkhttp.HeaderBodyOmitted))
	assert.Empty(t, readAll(t, resp))
	assert.Equal(t, 1, srv.count(), "run once")
}

func TestClassifyOverride(t *testing.T) {
	errMaintenance := errors.New("maintenance")
	srv := newServer(t, func(i int, w http.ResponseWriter, _ *http.Request) {
		if i == 0 {
			w.Header().Set("X-Maintenance", "1")
		}
		_, _ = io.WriteString(w, "ok "+itoa(i+1))
	})
	client, tr := newClient(t, newStack(t, testConfig()))
	tr.Classify = func(resp *http.Response, err error) error {
		if resp != nil && resp.Header.Get("X-Maintenance") != "" {
			return errMaintenance
		}
		return bulwarkhttp.DefaultClassify(resp, err)
	}
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "ok 2", readAll(t, resp), "a 200 classified as transient was retried")

	// Make every 200 a final answer: it is returned, not retried.
	tr.Classify = func(resp *http.Response, err error) error {
		if resp != nil {
			return bulwark.Final(errMaintenance)
		}
		return err
	}
	resp, err = client.Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "ok 3", readAll(t, resp))
	assert.Equal(t, 3, srv.count())
}

func TestDefaultClassify(t *testing.T) {
	errNet := errors.New("connection refused")
	assert.Same(t, errNet, bulwarkhttp.DefaultClassify(nil, errNet))
	for code, want := range map[int]string{
		200: "success", 204: "success", 301: "success", 304: "success",
		408: "transient", 425: "transient", 429: "transient",
		500: "transient", 502: "transient", 503: "transient", 504: "transient",
		400: "final", 401: "final", 403: "final", 404: "final", 409: "final", 422: "final",
		501: "permanent", 505: "permanent",
	} {
		err := bulwarkhttp.DefaultClassify(&http.Response{StatusCode: code, Header: http.Header{}}, nil)
		var got string
		switch {
		case err == nil:
			got = "success"
		case bulwark.IsFinal(err):
			got = "final"
		case strings.Contains(err.Error(), "HTTP") && !isPermanent(err):
			got = "transient"
		default:
			got = "permanent"
		}
		assert.Equal(t, want, got, "status %d", code)
	}
}

func TestDefaultRetryable(t *testing.T) {
	for method, want := range map[string]bool{
		"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true,
		"POST": false, "PATCH": false, "CONNECT": false,
	} {
		req, _ := http.NewRequest(method, "http://example.com", nil)
		assert.Equal(t, want, bulwarkhttp.DefaultRetryable(req), method)
		req.Header.Set("Idempotency-Key", "k")
		assert.True(t, bulwarkhttp.DefaultRetryable(req), method+" with a key")
	}
}

// A panicking callback propagates, after the request's body and the
// response being classified are closed.
func TestPanickingCallbacksReleaseTheRequest(t *testing.T) {
	srv := newServer(t, statuses(200))
	for _, tc := range []struct {
		name string
		set  func(*bulwarkhttp.Transport)
	}{
		{"Executor", func(tr *bulwarkhttp.Transport) { tr.Executor = func(*http.Request) string { panic("executor") } }},
		{"Retryable", func(tr *bulwarkhttp.Transport) { tr.Retryable = func(*http.Request) bool { panic("retryable") } }},
		{"Classify", func(tr *bulwarkhttp.Transport) {
			tr.Classify = func(resp *http.Response, _ error) error {
				if resp != nil {
					panic("classify")
				}
				return nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, tr := newClient(t, newStack(t, testConfig()))
			tc.set(tr)
			body := &closeRecorder{Reader: strings.NewReader("x")}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL, body)
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }
			assert.Panics(t, func() { _, _ = client.Do(req) })
			assert.True(t, body.closed)
		})
	}
}

// Identical idempotent requests in flight at once in one process: one
// request reaches the server, every caller gets its response.
func TestConcurrentDuplicatesShareOneRequest(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-release
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"7"}`)
	})
	client, _ := newClient(t, newStack(t, testConfig()))
	const n = 5
	type result struct {
		status int
		body   string
		err    error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/pages", strings.NewReader(`{"t":1}`))
			req.Header.Set("Idempotency-Key", "same")
			resp, err := client.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			results <- result{status: resp.StatusCode, body: string(b), err: err}
		}()
	}
	require.Eventually(t, func() bool { return srv.count() == 1 }, 2*time.Second, time.Millisecond)
	close(release)
	for range n {
		r := <-results
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusCreated, r.status)
		assert.Equal(t, `{"id":"7"}`, r.body)
	}
	assert.Equal(t, 1, srv.count())
}

// 501 is not retried but counted by the breaker; HEAD and 204 have no
// body; a 304 is a success.
func TestStatusesWithoutRetryOrBody(t *testing.T) {
	srv := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/501":
			http.Error(w, "no such method", http.StatusNotImplemented)
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("X-Head", "yes")
			_, _ = io.WriteString(w, "body")
		}
	})
	stack := newStack(t, testConfig())
	client, _ := newClient(t, stack)

	resp, err := client.Get(srv.URL + "/501")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotImplemented, resp.StatusCode)
	assert.Equal(t, "no such method\n", readAll(t, resp))
	assert.Equal(t, 1, srv.count(), "not retried")
	b := stack.Breaker(srv.Listener.Addr().String())
	assert.Equal(t, int64(1), b.Stats().Failures, "counted")

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodHead, "/", 200}, {http.MethodGet, "/204", 204}, {http.MethodGet, "/304", 304},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, nil)
		resp, err := client.Do(req)
		require.NoError(t, err)
		assert.Equal(t, tc.status, resp.StatusCode)
		assert.Empty(t, readAll(t, resp))
	}
	assert.Equal(t, 4, srv.count())
	assert.Equal(t, int64(3), b.Stats().Successes)
}
