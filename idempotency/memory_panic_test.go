package idempotency_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/idempotency"
)

// panickyError is an error whose Error method panics, as one with a nil
// field it formats might.
type panickyError struct{}

func (panickyError) Error() string { panic("Error panicked") }

// TestMemoryStoreCompletePanicFreesTheKey: the store calls the stored
// error's Error method (for a message); a panic there reaches the caller
// and releases the claim instead of holding the key until its lease runs
// out (forever, with an endless lease).
func TestMemoryStoreCompletePanicFreesTheKey(t *testing.T) {
	s := newMemory(t, 0)
	ctx := context.Background()
	_, claimed, err := s.Claim(ctx, "k", "a", "", forever)
	require.NoError(t, err)
	require.True(t, claimed)
	assert.PanicsWithValue(t, "Error panicked", func() {
		_ = s.Complete(ctx, "k", "a", idempotency.Outcome{Err: panickyError{}}, time.Hour)
	})
	_, found, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.False(t, found, "the claim was released")
	_, claimed, err = s.Claim(ctx, "k", "b", "", time.Minute)
	require.NoError(t, err)
	assert.True(t, claimed)
}
