package bulwarkhttp_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// A POST without an Idempotency-Key is sent once (docs/http.md), also
// when it is made inside a pipeline call that set Attempts(3) for its own
// executor: it was sent 3 times.
func TestPOSTWithoutKeyInsideOuterAttemptsThreeIsSentOnce(t *testing.T) {
	srv := newServer(t, statuses(http.StatusServiceUnavailable))
	stack := newStack(t, pipeline.Config{Retry: &retry.Config{MaxAttempts: 3, NoWait: true}})
	client, _ := newClient(t, stack)
	code, err := pipeline.Do(t.Context(), stack, "orders", func(ctx context.Context) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("charge $10"))
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_ = readAll(t, resp)
		return resp.StatusCode, nil // an answer: the outer call does not retry
	}, pipeline.Attempts(3))
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, 1, srv.count(), "a POST without Idempotency-Key was sent more than once")
}

// A GET answered from the fallback inside an idempotent outer call marks
// the outer call: its result is not recorded, and the next call with the
// same key runs again once the service is back.
func TestGETFromFallbackInsideKeyedOuterCallIsNotRecorded(t *testing.T) {
	var down atomic.Bool
	var price atomic.Value
	price.Store("10")
	srv := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, price.Load().(string))
	})
	stack := newStack(t, pipeline.Config{})
	require.NoError(t, stack.Configure("orders", pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}}))
	client, tr := newClient(t, stack)
	tr.Executor = func(*http.Request) string { return "catalog" }
	require.NoError(t, stack.Configure("catalog", pipeline.Config{Fallback: &pipeline.FallbackConfig{}}))
	get := func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/price", nil)
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		return readAll(t, resp), nil
	}
	v, err := get(t.Context()) // keeps "10"
	require.NoError(t, err)
	require.Equal(t, "10", v)

	price.Store("20")
	down.Store(true)
	r1 := pipeline.Execute(t.Context(), stack, "orders", get, pipeline.IdempotencyKey("order-1"))
	require.NoError(t, r1.Err)
	assert.Equal(t, "10", r1.Value)
	assert.True(t, r1.FromCache)

	down.Store(false)
	r2 := pipeline.Execute(t.Context(), stack, "orders", get, pipeline.IdempotencyKey("order-1"))
	require.NoError(t, r2.Err)
	assert.False(t, r2.Replayed, "the response served from the fallback was recorded")
	assert.Equal(t, "20", r2.Value)
}

// A request inside a pipeline call's function reports to that call's
// Report only that its response came from a cache: a POST replayed for its
// Idempotency-Key, or a request refused by an open circuit, does not make
// the enclosing call Replayed or Rejected (it ran its function; a keyed
// workflow step marked Replayed would keep its key after a rollback), and
// the request's attempts are not the call's. A Report attached for the
// request itself still gets everything.
func TestRequestInsideAPipelineCallDoesNotMarkItReplayedOrRejected(t *testing.T) {
	srv := newServer(t, statuses(http.StatusOK))
	stack := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	client, _ := newClient(t, stack)
	post := func(ctx context.Context) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/charges", strings.NewReader("charge $10"))
		if err != nil {
			return 0, err
		}
		req.Header.Set(bulwarkhttp.HeaderIdempotencyKey, "charge-1")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_ = readAll(t, resp)
		return resp.StatusCode, nil
	}
	_, err := post(t.Context())
	require.NoError(t, err)

	r := pipeline.Execute(t.Context(), stack, "checkout", post) // the POST is replayed inside
	require.NoError(t, r.Err)
	assert.False(t, r.Replayed, "checkout ran its function")
	assert.Equal(t, 1, r.Attempts)

	ctx, report := bulwark.WithReport(t.Context())
	_, err = post(ctx)
	require.NoError(t, err)
	assert.True(t, report.Replayed(), "the request's own Report says it was replayed")
	assert.Equal(t, 1, srv.count())
}

// lateServer answers every request with 201 "charged" once released,
// ignoring the request's context (a server that is slow and does not
// notice the client gave up).
type lateServer struct {
	calls   atomic.Int32
	release chan struct{}
}

func (b *lateServer) RoundTrip(req *http.Request) (*http.Response, error) {
	b.calls.Add(1)
	<-b.release
	return &http.Response{StatusCode: http.StatusCreated, Status: "201 Created", Header: http.Header{},
		Body: io.NopCloser(strings.NewReader("charged")), ContentLength: 7, Request: req}, nil
}

// A keyed pipeline call whose function sends a request that the
// Transport's breaker abandons (AbandonOnTimeout) keeps its own key while
// the request still runs — a duplicate gets ErrInProgress instead of
// sending the charge again — and releases it once the request ended,
// without recording the request's late answer as its own result.
func TestAbandonedRequestInsideAKeyedCallKeepsItsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
		require.NoError(t, err)
		cfg := pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{Store: store}}
		s, err := pipeline.New(cfg)
		require.NoError(t, err)
		other, err := pipeline.New(cfg)
		require.NoError(t, err)
		httpStack, err := pipeline.New(pipeline.Config{
			Breaker: &breaker.Config{RequestTimeout: time.Second, AbandonOnTimeout: true},
		})
		require.NoError(t, err)
		base := &lateServer{release: make(chan struct{})}
		client := (&bulwarkhttp.Transport{Base: base, Stack: httpStack}).Client()
		var orders atomic.Int32
		order := func(ctx context.Context) (string, error) {
			orders.Add(1)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://payments.test/charges", strings.NewReader(`{"amount":42}`))
			if err != nil {
				return "", err
			}
			resp, err := client.Do(req)
			if err != nil {
				return "", err
			}
			return readAll(t, resp), nil
		}
		key := pipeline.IdempotencyKey("order-7")
		r := pipeline.Execute(t.Context(), s, "orders", order, key)
		require.ErrorIs(t, r.Err, breaker.ErrTimeout)
		r = pipeline.Execute(t.Context(), other, "orders", order, key)
		require.ErrorIs(t, r.Err, idempotency.ErrInProgress, "the order's key was freed while its charge still ran")
		assert.EqualValues(t, 1, orders.Load())
		assert.EqualValues(t, 1, base.calls.Load())

		close(base.release)
		synctest.Wait()
		r = pipeline.Execute(t.Context(), other, "orders", order, key)
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed, "the late answer is not the order's result")
		assert.EqualValues(t, 2, orders.Load())
	})
}
