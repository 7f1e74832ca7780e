package bulwarkhttp

import (
	"context"

	"github.com/bulwark-go/bulwark/retry"
)

// WithNoRetry returns a copy of ctx with which a request is sent once:
// its executor's retry layer makes a single attempt. Attach it to a
// request with req.WithContext. It is WithAttempts(ctx, 1), and is safe
// for concurrent use.
func WithNoRetry(ctx context.Context) context.Context {
	return retry.WithMaxAttempts(ctx, 1)
}

// WithAttempts returns a copy of ctx with which a request is attempted at
// most n times, the first included, instead of its executor's
// MaxAttempts. It also lets a request that Transport.Retryable refuses
// (a POST without an Idempotency-Key) be retried, when you know it is
// safe; a request whose body cannot be replayed is still sent once. An n
// below 1 makes RoundTrip fail with an error wrapping pipeline.ErrInvalid
// without sending anything. It is retry.WithMaxAttempts: it costs one
// allocation and is safe for concurrent use.
func WithAttempts(ctx context.Context, n int) context.Context {
	return retry.WithMaxAttempts(ctx, n)
}
