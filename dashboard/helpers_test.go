package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/dashboard"
	"github.com/bulwark-go/bulwark/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDown = errors.New("503 service unavailable")

// newStack returns a Stack whose default executor opens its circuit
// after two failures and probes again after a minute.
func newStack(t *testing.T) *pipeline.Stack {
	t.Helper()
	s, err := pipeline.New(pipeline.Config{Breaker: &breaker.Config{FailureThreshold: 2, ResetTimeout: time.Minute}})
	require.NoError(t, err)
	return s
}

func newDashboard(t *testing.T, cfg dashboard.Config) *dashboard.Dashboard {
	t.Helper()
	d, err := dashboard.New(cfg)
	require.NoError(t, err)
	t.Cleanup(d.Close)
	return d
}

func succeed(s *pipeline.Stack, executor string, opts ...pipeline.CallOption) pipeline.Result[string] {
	return pipeline.Execute(context.Background(), s, executor, func(context.Context) (string, error) { return "ok", nil }, opts...)
}

func fail(s *pipeline.Stack, executor string, opts ...pipeline.CallOption) pipeline.Result[string] {
	return pipeline.Execute(context.Background(), s, executor, func(context.Context) (string, error) { return "", errDown }, opts...)
}

// get serves one request through d and returns the recorded response.
func serve(d http.Handler, method, target string, header http.Header) *responseRecorder {
	r, _ := http.NewRequest(method, "http://status.example"+target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := newRecorder()
	d.ServeHTTP(w, r)
	return w
}

func snapshotOf(t *testing.T, d http.Handler) dashboard.Snapshot {
	t.Helper()
	w := serve(d, http.MethodGet, "/snapshot.json", nil)
	require.Equal(t, http.StatusOK, w.code, w.body.String())
	var snap dashboard.Snapshot
	require.NoError(t, json.Unmarshal(w.body.Bytes(), &snap))
	return snap
}

func executorOf(t *testing.T, snap dashboard.Snapshot, name string) dashboard.Executor {
	t.Helper()
	for _, ex := range snap.Executors {
		if ex.Name == name {
			return ex
		}
	}
	t.Fatalf("no executor %q in %+v", name, snap.Executors)
	return dashboard.Executor{}
}

// responseRecorder is an http.ResponseWriter and http.Flusher that hands
// what was written since the last flush to msgs on every Flush, so that a
// test can read an event stream message by message (also under synctest:
// msgs is a channel made in the test's bubble).
type responseRecorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	msgs   chan string
}

func newRecorder() *responseRecorder {
	return &responseRecorder{header: http.Header{}, msgs: make(chan string, 64)}
}

func (w *responseRecorder) Header() http.Header { return w.header }

func (w *responseRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

func (w *responseRecorder) Flush() {
	w.msgs <- w.body.String()
	w.body.Reset()
}

// next returns the snapshot of the stream message flushed already,
// failing if there is none.
func (w *responseRecorder) next(t *testing.T) dashboard.Snapshot {
	t.Helper()
	select {
	case m := <-w.msgs:
		return decodeMessage(t, m)
	default:
		t.Fatal("no stream message")
		return dashboard.Snapshot{}
	}
}

// decodeMessage decodes the snapshot of one Server-Sent Events message.
func decodeMessage(t *testing.T, m string) dashboard.Snapshot {
	t.Helper()
	require.True(t, strings.HasSuffix(m, "\n\n"), "a message ends with a blank line: %q", m)
	var data string
	for line := range strings.SplitSeq(strings.TrimSuffix(m, "\n\n"), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			require.Empty(t, data, "one data line per message: %q", m)
			data = d
		}
	}
	var snap dashboard.Snapshot
	require.NoError(t, json.Unmarshal([]byte(data), &snap), "message %q", m)
	return snap
}
