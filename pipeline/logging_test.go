package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

type requestIDKey struct{}

// The pipeline's Logger logs every event of every layer, with the
// executor and the operation, and the call's context reaches the handler.
func TestLoggerLogsEveryEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(ctxHandler{slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
		cfg := pipeline.Unreliable()
		cfg.Retry = &retry.Config{MaxAttempts: 2, NoWait: true}
		cfg.Logger = logger
		s := newStack(t, cfg)
		ctx := context.WithValue(t.Context(), requestIDKey{}, "req-42")
		op := pipeline.Operation("get-page")
		pipeline.Execute(ctx, s, "notion", value("page"), op, pipeline.IdempotencyKey("k"))
		pipeline.Execute(ctx, s, "notion", value("page"), op, pipeline.IdempotencyKey("k"))
		for range 3 {
			pipeline.Execute(ctx, s, "notion", failing(503), op)
		}
		pipeline.Execute(ctx, s, "notion", value("page"), op)

		kinds := map[string]map[string]any{}
		for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			var rec map[string]any
			require.NoError(t, json.Unmarshal(line, &rec))
			if k, ok := rec["kind"].(string); ok {
				kinds[k] = rec
			} else if rec["msg"] == "circuit breaker opened" {
				kinds["circuit:opened"] = rec
			}
		}
		for _, k := range []string{"request:success", "idempotency:replayed", "retry:attempt", "retry:exhausted",
			"request:failure", "fallback:used", "circuit:opened", "request:rejected"} {
			rec, ok := kinds[k]
			if !assert.True(t, ok, "no log record for %s", k) {
				continue
			}
			assert.Equal(t, "notion", rec["executor"], k)
			assert.Equal(t, "req-42", rec["request_id"], "%s: the call's context reaches the handler", k)
			if k != "circuit:opened" {
				assert.Equal(t, "get-page", rec["operation"], k)
			}
		}
		assert.Equal(t, "WARN", kinds["circuit:opened"]["level"])
		assert.Equal(t, "DEBUG", kinds["retry:attempt"]["level"])
	})
}

// Subscribers see the call's context and operation on every call event.
func TestEventsCarryContextAndOperation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Unreliable()
		cfg.Retry = &retry.Config{MaxAttempts: 2, NoWait: true}
		s := newStack(t, cfg)
		var events recorder
		defer s.Subscribe(events.listen)()
		ctx := context.WithValue(t.Context(), requestIDKey{}, "req-7")
		op := pipeline.Operation("list-cards")
		pipeline.Execute(ctx, s, "trello", value("cards"), op)
		for range 3 {
			pipeline.Execute(ctx, s, "trello", failing(503), op)
		}
		seen := 0
		for _, e := range events.all() {
			if e.Kind == bulwark.CircuitOpened || e.Kind == bulwark.RequestSuccess || e.Kind == bulwark.RetryAttempt || e.Kind == bulwark.FallbackUsed {
				require.NotNil(t, e.Context, "%s has no context", e.Kind)
				assert.Equal(t, "req-7", e.Context.Value(requestIDKey{}), e.Kind)
				assert.Equal(t, "list-cards", e.Operation, e.Kind)
				seen++
			}
		}
		assert.GreaterOrEqual(t, seen, 6)
	})
}

// ctxHandler copies the request ID of the record's context into it, as a
// tracing handler copies span IDs.
type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h ctxHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ctxHandler{h.Handler.WithAttrs(as)}
}
func (h ctxHandler) WithGroup(g string) slog.Handler { return ctxHandler{h.Handler.WithGroup(g)} }
