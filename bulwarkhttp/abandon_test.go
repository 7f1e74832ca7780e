package bulwarkhttp_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/pipeline"
)

// slowBase answers 201 "charged" once release is closed, ignoring the
// request's context (a RoundTripper that does not honour cancellation).
type slowBase struct {
	calls   atomic.Int32
	release chan struct{}
}

func (b *slowBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.calls.Add(1)
	<-b.release
	return &http.Response{StatusCode: http.StatusCreated, Status: "201 Created", Header: http.Header{},
		Body: io.NopCloser(strings.NewReader("charged")), ContentLength: 7, Request: req}, nil
}

// A keyed request whose attempt the breaker abandons (AbandonOnTimeout)
// holds its key until the attempt ends, and the answer that then arrives
// is recorded and replayed: the attempt reported it as a failure ("ended
// after the request returned"), the key was released, and the next
// request sent the charge a second time.
func TestAbandonedAttemptAnswerIsRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stack, err := pipeline.New(pipeline.Config{
			Idempotency: &pipeline.IdempotencyConfig{},
			Breaker:     &breaker.Config{RequestTimeout: time.Second, AbandonOnTimeout: true},
		})
		require.NoError(t, err)
		base := &slowBase{release: make(chan struct{})}
		client := (&bulwarkhttp.Transport{Base: base, Stack: stack}).Client()
		post := func() (*http.Response, error) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://payments.test/charges", bytes.NewReader([]byte(`{"amount":42}`)))
			require.NoError(t, err)
			req.Header.Set(bulwarkhttp.HeaderIdempotencyKey, "charge-42")
			return client.Do(req)
		}
		_, err = post()
		require.ErrorIs(t, err, breaker.ErrTimeout)

		close(base.release)
		synctest.Wait()
		resp, err := post()
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusCreated, resp.StatusCode)
		assert.Equal(t, "charged", string(body))
		assert.Equal(t, "true", resp.Header.Get(bulwarkhttp.HeaderReplayed))
		assert.EqualValues(t, 1, base.calls.Load(), "the charge was sent twice")
	})
}
