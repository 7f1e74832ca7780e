package bulwark_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwark-go/bulwark"
)

func TestEventKindNames(t *testing.T) {
	// The names are part of the public contract (DESIGN.md).
	want := map[bulwark.EventKind]string{
		bulwark.CircuitOpened:       "circuit:opened",
		bulwark.CircuitClosed:       "circuit:closed",
		bulwark.CircuitHalfOpen:     "circuit:half-open",
		bulwark.RequestSuccess:      "request:success",
		bulwark.RequestFailure:      "request:failure",
		bulwark.RequestRejected:     "request:rejected",
		bulwark.FallbackUsed:        "fallback:used",
		bulwark.RetryAttempt:        "retry:attempt",
		bulwark.RetryExhausted:      "retry:exhausted",
		bulwark.IdempotencyReplayed: "idempotency:replayed",
		bulwark.IdempotencyConflict: "idempotency:conflict",
		bulwark.RollbackCompensated: "rollback:compensated",
		bulwark.RollbackFailed:      "rollback:failed",
	}
	for k, s := range want {
		assert.Equal(t, s, k.String())
	}
}
