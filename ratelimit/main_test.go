package ratelimit_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: the
// limiter starts none.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
