package pipeline

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwark-go/bulwark/rollback"
)

// A replayed step falls back to registering itself only when rollback.Once
// refused to run (the registration then says why); a wait for another
// goroutine's pending registration of the same key that the caller's
// context ended is an error of its own, never a second registration.
func TestOnceRefused(t *testing.T) {
	for err, want := range map[error]bool{
		rollback.ErrNoScope:    true,
		rollback.ErrScopeEnded: true,
		fmt.Errorf("%w Once token: func()", rollback.ErrInvalid): true,
		context.Canceled:         false,
		context.DeadlineExceeded: false,
		fmt.Errorf("shutdown"):   false,
	} {
		assert.Equal(t, want, onceRefused(err), "%v", err)
	}
}
