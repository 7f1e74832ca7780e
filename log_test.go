package bulwark_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

type traceKey struct{}

// ctxHandler copies a value of the record's context into the record, as a
// tracing handler copies the span's IDs.
type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(traceKey{}).(string); ok {
		r.AddAttrs(slog.String("trace_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func TestLogListener(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(ctxHandler{slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	listen := bulwark.LogListener(logger)
	ctx := context.WithValue(context.Background(), traceKey{}, "trace-1")
	listen(bulwark.Event{Kind: bulwark.RetryAttempt, Executor: "notion", Operation: "get-page", Attempt: 2,
		Duration: 750 * time.Millisecond, Err: errors.New("503"), Context: ctx})
	listen(bulwark.Event{Kind: bulwark.CircuitOpened, Executor: "notion", From: "CLOSED", To: "OPEN", Seq: 1})

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var first, second map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &first))
	require.NoError(t, json.Unmarshal(lines[1], &second))
	assert.Equal(t, "DEBUG", first["level"])
	assert.Equal(t, "bulwark retry:attempt", first["msg"])
	assert.Equal(t, "notion", first["executor"])
	assert.Equal(t, "get-page", first["operation"])
	assert.Equal(t, float64(2), first["attempt"])
	assert.Equal(t, float64(750*time.Millisecond), first["wait"])
	assert.Equal(t, "503", first["error"])
	assert.Equal(t, "trace-1", first["trace_id"], "the event's context reaches the handler")
	assert.Equal(t, "WARN", second["level"])
	assert.Equal(t, "OPEN", second["to"])
	assert.Equal(t, float64(1), second["seq"])

	assert.Nil(t, bulwark.LogListener(nil))
}

func TestLogLevels(t *testing.T) {
	assert.Equal(t, slog.LevelWarn, bulwark.LogLevel(bulwark.CircuitOpened))
	assert.Equal(t, slog.LevelWarn, bulwark.LogLevel(bulwark.RollbackFailed))
	assert.Equal(t, slog.LevelInfo, bulwark.LogLevel(bulwark.CircuitClosed))
	assert.Equal(t, slog.LevelInfo, bulwark.LogLevel(bulwark.CircuitHalfOpen))
	assert.Equal(t, slog.LevelDebug, bulwark.LogLevel(bulwark.RequestSuccess))
	assert.Equal(t, slog.LevelDebug, bulwark.LogLevel(bulwark.FallbackUsed))
}

// A disabled level costs no allocation.
func TestLogListenerDisabledLevelAllocatesNothing(t *testing.T) {
	logger := slog.New(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	listen := bulwark.LogListener(logger)
	e := bulwark.Event{Kind: bulwark.RequestSuccess, Executor: "notion"}
	assert.Zero(t, testing.AllocsPerRun(100, func() { listen(e) }))
}
