package dashboard_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/dashboard"
)

// stream serves GET /events on a goroutine; the returned channel is
// closed when the handler returns.
func stream(ctx context.Context, d *dashboard.Dashboard) (*responseRecorder, <-chan struct{}) {
	w := newRecorder()
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://status.example/events", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.ServeHTTP(w, r)
	}()
	return w, done
}

func TestStreamPushesAStateChangeAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t)
		d := newDashboard(t, dashboard.Config{Stack: s, Interval: time.Hour})
		succeed(s, "notion")
		ctx, cancel := context.WithCancel(t.Context())
		w, done := stream(ctx, d)

		synctest.Wait()
		assert.Equal(t, "text/event-stream", w.header.Get("Content-Type"))
		assert.Equal(t, "no-store", w.header.Get("Cache-Control"))
		first := w.next(t)
		assert.Equal(t, "CLOSED", executorOf(t, first, "notion").State)
		assert.Empty(t, w.msgs, "nothing more until something changes")

		// The outage: the circuit opens, and the stream says so at once,
		// with no time passing (the next periodic push is an hour away).
		fail(s, "notion")
		synctest.Wait()
		assert.Empty(t, w.msgs, "a failure alone is not pushed before the interval")
		fail(s, "notion")
		synctest.Wait()
		opened := w.next(t)
		assert.Equal(t, first.Time, opened.Time, "pushed without waiting")
		assert.Equal(t, "OPEN", executorOf(t, opened, "notion").State)
		assert.Equal(t, "circuit:opened", opened.Events[0].Kind)

		// A Reset (circuit:closed) is pushed at once too.
		s.Breaker("notion").Reset()
		synctest.Wait()
		assert.Equal(t, "CLOSED", executorOf(t, w.next(t), "notion").State)

		// Every Interval, a fresh snapshot regardless.
		time.Sleep(time.Hour)
		synctest.Wait()
		periodic := w.next(t)
		assert.Equal(t, first.Time.Add(time.Hour), periodic.Time)
		var kinds []string
		for _, ev := range periodic.Events {
			kinds = append(kinds, ev.Kind)
		}
		assert.Equal(t, []string{"circuit:closed", "circuit:opened", "request:failure", "request:failure"}, kinds)

		// The stream ends with its request.
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("the stream outlived its request")
		}
	})
}

func TestStreamEndsOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t)
		d, err := dashboard.New(dashboard.Config{Stack: s})
		require.NoError(t, err)
		w, done := stream(t.Context(), d)
		synctest.Wait()
		w.next(t)

		d.Close() // waits for the stream's handler to return
		// The handler has returned; its goroutine here still has to run
		// the deferred close(done) (checking at once raced with that).
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("the stream did not end with Close")
		}
		w2, done2 := stream(t.Context(), d)
		<-done2
		assert.Equal(t, http.StatusServiceUnavailable, w2.code)
	})
}

// A real server and client: the stream is flushed message by message
// through net/http, and a state change arrives while the response is
// still open. goleak (TestMain) checks nothing outlives the server.
func TestStreamOverHTTP(t *testing.T) {
	s := newStack(t)
	d := newDashboard(t, dashboard.Config{Stack: s, Interval: time.Hour})
	succeed(s, "notion")
	srv := httptest.NewServer(d)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a bound for a hang, not a speed check
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	require.NoError(t, err)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))

	lines := bufio.NewScanner(res.Body)
	lines.Buffer(nil, 1<<20)
	nextMessage := func() string {
		var m strings.Builder
		for lines.Scan() {
			if lines.Text() == "" {
				return m.String() + "\n"
			}
			m.WriteString(lines.Text() + "\n")
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return ""
	}
	first := nextMessage()
	assert.True(t, strings.HasPrefix(first, "retry: 1000\ndata: {"), first)
	assert.Equal(t, "CLOSED", executorOf(t, decodeMessage(t, strings.TrimPrefix(first, "retry: 1000\n")), "notion").State)

	fail(s, "notion")
	fail(s, "notion")
	assert.Equal(t, "OPEN", executorOf(t, decodeMessage(t, nextMessage()), "notion").State)
}
