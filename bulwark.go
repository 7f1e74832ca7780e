// Package bulwark is the shared vocabulary of a composable resilience stack
// for calls to unreliable services.
//
// Every layer of bulwark (idempotency, fallback cache, circuit breaker,
// retry and rollback) lives in its own package and wraps the same shape of
// call, a [Func], with a [Middleware]. The layers never import each other;
// they coordinate through the names defined here:
//
//   - [ErrRejected] is wrapped by every fail-fast refusal (an open circuit,
//     too many half-open probes), so retry can refuse to retry it and a
//     fallback can serve a cached value instead.
//   - [ErrFinal], marked with [Final], is the service's final answer: it
//     answered and refused the request on its merits (an HTTP 404, a
//     declined card). No layer treats it as an outage: it is not retried,
//     not counted against the circuit and never answered from the
//     fallback cache.
//   - [Event], [EventKind] and [Listener] let one subscriber watch every
//     layer of the stack.
//   - [Report] carries per-call metadata (attempts, served from cache,
//     replayed, rejected, rolled back) through the context, so the pipeline
//     package can build a result from what each layer saw.
//
// The pipeline package stacks the layers per executor in the documented
// order; each layer package can also be used and tested alone.
package bulwark

import (
	"context"
	"errors"
)

// Func is a call to an unreliable service: it receives the call's context
// and returns a value or an error. Every layer of bulwark wraps a Func.
type Func[T any] func(ctx context.Context) (T, error)

// Middleware wraps a Func with one layer of behaviour and returns the
// wrapped Func. A Middleware is applied once, when the stack is built; the
// Func it returns is then called for every request and must be safe for
// concurrent use if the wrapped Func is.
type Middleware[T any] func(next Func[T]) Func[T]

// Chain composes middlewares into one. The first argument is the outermost
// layer: it sees the call first and the result last. Chain copies its
// arguments, so changing the slice afterwards does not change the chain. A
// nil Middleware in the list is skipped, and Chain() with no arguments
// returns the identity middleware, which returns next unchanged.
//
// Chain does its work when the returned Middleware is applied; calling the
// resulting Func costs only the calls of the layers themselves.
func Chain[T any](mws ...Middleware[T]) Middleware[T] {
	layers := make([]Middleware[T], 0, len(mws))
	for _, mw := range mws {
		if mw != nil {
			layers = append(layers, mw)
		}
	}
	return func(next Func[T]) Func[T] {
		for i := len(layers) - 1; i >= 0; i-- {
			next = layers[i](next)
		}
		return next
	}
}

// ErrRejected is wrapped by every error a layer returns when it refuses a
// call without running it because the service is presumed unable to serve
// it now: an open circuit, a half-open circuit with all probe slots taken.
// (An idempotency duplicate that meets a call in progress is not a
// rejection: its result is on its way, so it is worth retrying.)
//
// Test for it with errors.Is. Retry never retries an error that wraps
// ErrRejected, and a fallback configured for rejections serves its cached
// value only for such errors.
var ErrRejected = errors.New("bulwark: rejected")
