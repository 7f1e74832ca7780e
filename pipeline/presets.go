package pipeline

import (
	"time"

	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// The presets follow the configuration guidelines for three kinds of
// service. Each returns a new Config with idempotency (an in-memory
// store; it acts only on calls that carry a key), the breaker with the
// numbers below, and retry and rollback with their packages' defaults;
// the fallback where noted. The load-protection layers (Bulkhead,
// RateLimit, AttemptTimeout, Retry.Budget) are off: the guidelines give
// no number for them, and each depends on the service or the caller.
// Adjust the result before passing it to New or Stack.Configure; presets
// share nothing.

// Reliable is for a service that rarely fails, where a failure is worth
// noticing quickly but a short blip should not open the circuit: the
// circuit opens after 10 consecutive failures within 120s, probes again
// after 20s, closes after 2 successful probes, and each call gets 5s. No
// fallback cache.
func Reliable() Config {
	return preset(breaker.Config{
		FailureThreshold: 10,
		FailureWindow:    120 * time.Second,
		ResetTimeout:     20 * time.Second,
		SuccessThreshold: 2,
		RequestTimeout:   5 * time.Second,
	}, nil)
}

// Unreliable is for a flaky service whose last good answer is better than
// none (a read API, a status page): the circuit opens after 3 consecutive
// failures within 30s, probes again after 60s, closes after 3 successful
// probes, and each call gets 15s. Failed calls that name their key
// (Operation, FallbackKey) are answered from the fallback cache with a
// result up to 10 minutes old; calls that name none, and the service's
// final answers (a 404), are never answered from the cache.
func Unreliable() Config {
	return preset(breaker.Config{
		FailureThreshold: 3,
		FailureWindow:    30 * time.Second,
		ResetTimeout:     60 * time.Second,
		SuccessThreshold: 3,
		RequestTimeout:   15 * time.Second,
	}, &FallbackConfig{FallbackConfig: cache.FallbackConfig{MaxAge: 10 * time.Minute}})
}

// Critical is for a service where acting on a broken dependency is costly
// (payments): the circuit opens after 2 consecutive failures within 30s,
// waits 120s before probing, needs 5 successful probes to close, and each
// call gets 20s. No fallback cache: a payment must never be answered with
// an old result.
func Critical() Config {
	return preset(breaker.Config{
		FailureThreshold: 2,
		FailureWindow:    30 * time.Second,
		ResetTimeout:     120 * time.Second,
		SuccessThreshold: 5,
		RequestTimeout:   20 * time.Second,
	}, nil)
}

func preset(b breaker.Config, fallback *FallbackConfig) Config {
	return Config{
		Idempotency: &IdempotencyConfig{},
		Fallback:    fallback,
		Breaker:     &b,
		Retry:       &retry.Config{},
		Rollback:    &rollback.Config{},
	}
}
