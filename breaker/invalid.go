package breaker

import (
	"context"
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by the error of a call made with invalid input: a
// nil function, a nil *Breaker or a nil context passed to [Do], to
// [Middleware] or to the function it builds, or a nil *Breaker's
// [Breaker.Allow], [Group.Configure] on a nil *Group. Such a call runs
// nothing, counts nothing and changes no state. A [*ConfigError] wraps it
// too.
var ErrInvalid = errors.New("breaker: invalid input")

// The errors of invalid calls. They are made once: an invalid call
// allocates nothing.
var (
	errNilFunc    = fmt.Errorf("%w: nil function", ErrInvalid)
	errNilBreaker = fmt.Errorf("%w: nil *Breaker", ErrInvalid)
	errNilContext = fmt.Errorf("%w: nil context", ErrInvalid)
	errNilGroup   = fmt.Errorf("%w: nil *Group", ErrInvalid)
)

// invalid returns the error of a call to Do with a nil argument. It is
// kept out of line so that Do's check costs only the comparisons.
//
//go:noinline
func invalid(ctx context.Context, b *Breaker) error {
	switch {
	case b == nil:
		return errNilBreaker
	case ctx == nil:
		return errNilContext
	}
	return errNilFunc
}
