package bulwark

import (
	"context"
	"log/slog"
)

// LogLevel is the level at which [LogListener] logs an event of kind k:
//
//   - slog.LevelWarn for circuit:opened and rollback:failed: the service
//     is presumed down, or an effect could not be undone;
//   - slog.LevelInfo for the other state changes: circuit:half-open,
//     circuit:closed, ratelimit:paused, idempotency:forgotten;
//   - slog.LevelDebug for per-request events: request:*, retry:*,
//     fallback:used, idempotency:replayed and idempotency:conflict,
//     rollback:compensated, bulkhead and rate-limit rejections, and any
//     kind it does not know.
func LogLevel(k EventKind) slog.Level {
	switch k {
	case CircuitOpened, RollbackFailed:
		return slog.LevelWarn
	case CircuitHalfOpen, CircuitClosed, RateLimitPaused, IdempotencyForgotten:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// LogListener returns a [Listener] that writes every event to logger, at
// [LogLevel] of its kind, with the message "bulwark " + kind and
// structured attributes: kind, executor, operation, and those of the
// event's fields that are set (attempt, wait or duration, error, from and
// to, seq, key, step). The event's Context is passed to the logger, so a
// handler that correlates records with traces finds the call's span.
//
// An event whose level the logger does not enable costs one Enabled call
// and no allocation. A nil logger gives a nil Listener (no events). The
// Listener is safe for concurrent use if logger's handler is.
func LogListener(logger *slog.Logger) Listener {
	if logger == nil {
		return nil
	}
	return func(e Event) { LogEvent(logger, e) }
}

// LogEvent writes e to logger as [LogListener] does.
func LogEvent(logger *slog.Logger, e Event) {
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	level := LogLevel(e.Kind)
	if !logger.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("kind", string(e.Kind)))
	if e.Executor != "" {
		attrs = append(attrs, slog.String("executor", e.Executor))
	}
	if e.Operation != "" {
		attrs = append(attrs, slog.String("operation", e.Operation))
	}
	if e.Attempt != 0 {
		attrs = append(attrs, slog.Int("attempt", e.Attempt))
	}
	if e.Duration != 0 {
		name := "duration"
		switch e.Kind {
		case RetryAttempt, RateLimitPaused:
			name = "wait"
		case FallbackUsed:
			name = "age"
		}
		attrs = append(attrs, slog.Duration(name, e.Duration))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	if e.From != "" || e.To != "" {
		attrs = append(attrs, slog.String("from", e.From), slog.String("to", e.To))
	}
	if e.Seq != 0 {
		attrs = append(attrs, slog.Uint64("seq", e.Seq))
	}
	if e.Key != "" {
		attrs = append(attrs, slog.String("key", e.Key))
	}
	if e.Step != "" {
		attrs = append(attrs, slog.String("step", e.Step))
	}
	logger.LogAttrs(ctx, level, "bulwark "+string(e.Kind), attrs...)
}
