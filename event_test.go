package bulwark_test

import (
	"errors"
	"testing"
	"time"

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

func TestEventString(t *testing.T) {
	e := bulwark.Event{Kind: bulwark.RetryAttempt, Executor: "notion", Operation: "get-page", Attempt: 1,
		Duration: 500 * time.Millisecond, Err: errors.New("503")}
	assert.Equal(t, `retry:attempt notion get-page attempt=1 duration=500ms err="503"`, e.String())
	e = bulwark.Event{Kind: bulwark.CircuitOpened, Executor: "notion", From: "CLOSED", To: "OPEN"}
	assert.Equal(t, "circuit:opened notion CLOSED->OPEN", e.String())
	assert.Equal(t, `rollback:failed step="delete page" err="403"`,
		bulwark.Event{Kind: bulwark.RollbackFailed, Step: "delete page", Err: errors.New("403")}.String())
}
