package rollback_test

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwark-go/bulwark/rollback"
)

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *rollback.Error
		want string
	}{
		{
			&rollback.Error{Cause: errCall, Failures: []rollback.StepError{{Step: "delete page", Err: io.EOF}}},
			`rollback: compensation "delete page" failed: EOF; call error: call failed`,
		},
		{
			&rollback.Error{
				Cause:    errCall,
				Failures: []rollback.StepError{{Step: "b", Err: io.EOF}, {Step: "a", Err: io.ErrUnexpectedEOF}},
			},
			`rollback: compensation "b" failed: EOF; compensation "a" failed: unexpected EOF; call error: call failed`,
		},
		{
			&rollback.Error{Failures: []rollback.StepError{{Step: "c", Err: io.EOF}}, Skipped: []string{"b", "a"}},
			`rollback: compensation "c" failed: EOF; skipped "b", "a"`,
		},
	} {
		assert.Equal(t, tc.want, tc.err.Error())
	}
}

func TestErrorUnwrapsToCauseOnly(t *testing.T) {
	var err error = &rollback.Error{Cause: errCall, Failures: []rollback.StepError{{Step: "x", Err: io.EOF}}}
	assert.ErrorIs(t, err, errCall)
	assert.NotErrorIs(t, err, io.EOF, "compensation errors are not the call's")
	var rbErr *rollback.Error
	assert.ErrorAs(t, err, &rbErr)
	assert.ErrorIs(t, &rbErr.Failures[0], io.EOF, "each failure unwraps to its error")
}

func TestStepError(t *testing.T) {
	err := &rollback.StepError{Step: "create card", Err: io.EOF}
	assert.Equal(t, `rollback: step "create card": EOF`, err.Error())
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, `rollback: step "x": <nil>`, (&rollback.StepError{Step: "x"}).Error())
}

func TestPanicError(t *testing.T) {
	pe := &rollback.PanicError{Value: io.EOF}
	assert.Equal(t, "rollback: compensation panicked: EOF", pe.Error())
	assert.ErrorIs(t, pe, io.EOF, "a panicked error is seen through")
	assert.NoError(t, errors.Unwrap(&rollback.PanicError{Value: 42}))
}
