package breaker

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: the
// breaker starts none of its own except the short-lived reset timer
// callbacks and, with AbandonOnTimeout, the function's goroutine (which
// the tests let finish).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
