package bulwark_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/stretchr/testify/assert"
)

func TestFinal(t *testing.T) {
	assert.NoError(t, bulwark.Final(nil))
	assert.False(t, bulwark.IsFinal(nil))

	declined := errors.New("card declined")
	err := bulwark.Final(declined)
	assert.True(t, bulwark.IsFinal(err))
	assert.ErrorIs(t, err, declined, "Final keeps the original error in the chain")
	assert.Equal(t, "card declined", err.Error())
	assert.Same(t, err, bulwark.Final(err), "marking twice returns the same error")

	wrapped := fmt.Errorf("create charge: %w", err)
	assert.True(t, bulwark.IsFinal(wrapped), "a wrapped final answer is still final")
	assert.Same(t, wrapped, bulwark.Final(wrapped))

	assert.False(t, bulwark.IsFinal(io.EOF))
	assert.False(t, bulwark.IsFinal(bulwark.ErrRejected), "a rejection is not an answer of the service")
}

// validationError is a user error type that declares itself final.
type validationError struct{ field string }

func (e validationError) Error() string        { return "invalid " + e.field }
func (e validationError) Is(target error) bool { return target == bulwark.ErrFinal }

func TestFinalOwnType(t *testing.T) {
	var err error = validationError{field: "email"}
	assert.True(t, bulwark.IsFinal(err))
	assert.True(t, bulwark.IsFinal(fmt.Errorf("signup: %w", err)))
}
