package otel

import (
	"strings"

	"github.com/bulwark-go/bulwark"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// spanEventName is the span event's name for kind: "bulwark." and the
// kind with ':' replaced by '.'. The known kinds are constants, so naming
// their events allocates nothing.
func spanEventName(kind bulwark.EventKind) string {
	switch kind {
	case bulwark.RetryAttempt:
		return "bulwark.retry.attempt"
	case bulwark.RetryExhausted:
		return "bulwark.retry.exhausted"
	case bulwark.RequestRejected:
		return "bulwark.request.rejected"
	case bulwark.BulkheadRejected:
		return "bulwark.bulkhead.rejected"
	case bulwark.RateLimitRejected:
		return "bulwark.ratelimit.rejected"
	case bulwark.RateLimitPaused:
		return "bulwark.ratelimit.paused"
	case bulwark.CircuitOpened:
		return "bulwark.circuit.opened"
	case bulwark.CircuitHalfOpen:
		return "bulwark.circuit.half-open"
	case bulwark.CircuitClosed:
		return "bulwark.circuit.closed"
	case bulwark.FallbackUsed:
		return "bulwark.fallback.used"
	case bulwark.IdempotencyReplayed:
		return "bulwark.idempotency.replayed"
	case bulwark.IdempotencyConflict:
		return "bulwark.idempotency.conflict"
	case bulwark.IdempotencyForgotten:
		return "bulwark.idempotency.forgotten"
	case bulwark.RollbackCompensated:
		return "bulwark.rollback.compensated"
	case bulwark.RollbackFailed:
		return "bulwark.rollback.failed"
	}
	return "bulwark." + strings.ReplaceAll(string(kind), ":", ".")
}

// addSpanEvent adds ev to the span of its context, if that span records.
func addSpanEvent(ev bulwark.Event, executor attribute.KeyValue) {
	span := trace.SpanFromContext(ev.Context)
	if !span.IsRecording() {
		return
	}
	kvs := make([]attribute.KeyValue, 0, 6)
	kvs = append(kvs, executor)
	if ev.Operation != "" {
		kvs = append(kvs, attribute.String("bulwark.operation", ev.Operation))
	}
	if ev.Attempt != 0 {
		kvs = append(kvs, attribute.Int("bulwark.attempt", ev.Attempt))
	}
	switch ev.Kind {
	case bulwark.RetryAttempt, bulwark.RateLimitPaused:
		kvs = append(kvs, attribute.Float64("bulwark.wait", ev.Duration.Seconds()))
	case bulwark.FallbackUsed:
		kvs = append(kvs, attribute.Float64("bulwark.fallback.age", ev.Duration.Seconds()))
	case bulwark.RequestRejected:
		kvs = append(kvs, attribute.String("bulwark.layer", "breaker"))
	case bulwark.BulkheadRejected:
		kvs = append(kvs, attribute.String("bulwark.layer", "bulkhead"))
	case bulwark.RateLimitRejected:
		kvs = append(kvs, attribute.String("bulwark.layer", "ratelimit"))
	}
	if ev.From != "" || ev.To != "" {
		kvs = append(kvs, attribute.String("bulwark.circuit.from", ev.From), attribute.String("bulwark.circuit.to", ev.To))
	}
	if ev.Key != "" {
		kvs = append(kvs, attribute.String("bulwark.idempotency.key", ev.Key))
	}
	if ev.Step != "" {
		kvs = append(kvs, attribute.String("bulwark.step", ev.Step))
	}
	if ev.Err != nil {
		kvs = append(kvs, attribute.String("error.message", ev.Err.Error()))
	}
	opts := []trace.EventOption{trace.WithAttributes(kvs...)}
	if !ev.Time.IsZero() {
		opts = append(opts, trace.WithTimestamp(ev.Time))
	}
	span.AddEvent(spanEventName(ev.Kind), opts...)
}
