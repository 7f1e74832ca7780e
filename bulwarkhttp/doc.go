// Package bulwarkhttp runs HTTP requests through a bulwark stack: a
// [Transport] is an http.RoundTripper that sends each request through the
// layers (idempotency, fallback, breaker, retry) of its executor in a
// pipeline.Stack, one executor per host by default.
//
//	stack, _ := pipeline.New(pipeline.Reliable())
//	client := bulwarkhttp.NewClient(stack)
//	resp, err := client.Get("https://api.example.com/v1/pages/42")
//
// # What the caller sees
//
// Statuses are responses, as http.Client users expect: after the retries
// of a transient status are exhausted the caller gets the last response
// (status, headers, readable body) and a nil error. An error means no
// response: a network failure that retries did not overcome, the
// caller's cancellation, the breaker's request timeout, or a refusal (an
// open circuit: the error wraps bulwark.ErrRejected, and the server was
// not contacted).
//
// # Classification
//
// [DefaultClassify] decides, for each attempt, what the layers see: 2xx
// and 3xx succeed; 408, 425, 429 and every 5xx but 501 and 505 are
// transient (retried, counted by the breaker, answered from the
// fallback); other 4xx are the service's final answer (bulwark.ErrFinal:
// not retried, not counted, never answered from the fallback); 501 and
// 505 are not retried but counted; network errors are transient; the
// caller's cancellation is neither. Transport.Classify overrides it.
//
// # What is retried
//
// Only requests that are safe to repeat ([DefaultRetryable]): GET, HEAD,
// OPTIONS, TRACE, PUT and DELETE, and any request carrying an
// Idempotency-Key header. A POST or PATCH without one is sent once, and
// so is a request whose body cannot be replayed (a non-nil Body without
// GetBody). [WithNoRetry] and [WithAttempts] set the attempts of one
// request through its context.
//
// # Bodies and timeouts
//
// A request body is sent in full on every attempt (a fresh copy from
// Request.GetBody). A response body up to Transport.MaxBodyBytes (1 MiB by
// default) is read inside the attempt, so that a connection reset in the
// middle of it is retried like any transient failure, and the caller gets
// the bytes from memory; the connection is then back in the pool before
// RoundTrip returns. A larger body (or a text/event-stream) is handed to
// the caller as a stream. Every attempt's request runs on the call's
// deadline context, which the Transport makes for the breaker
// (breaker.CallContextKey) from the request's context, bounded by the
// breaker's RequestTimeout: so the timeout covers the whole exchange,
// reading a streamed body included (as http.Client.Timeout does), and the
// context stays alive after the call until the caller closes a streamed
// body or reads it to the end. The responses of failed
// attempts are read (bounded) and closed before the next attempt, so
// their connections are reused.
//
// # Idempotency and fallback
//
// A request with an Idempotency-Key header runs at most once per key on
// its executor (the executor's Idempotency layer, if it has one): the key
// is idempotency.Key(executor, method, URL, header value), the payload
// fingerprint the SHA-256 of the body and, for a request with
// Authorization or Cookie, of those: a duplicate with other credentials
// fails with idempotency.ErrKeyReuse. A duplicate gets the stored
// response back (status, headers, body bytes) without a request, marked
// with the [HeaderReplayed] header; the header itself is forwarded to the
// server unchanged.
//
// For an executor with a Fallback layer, a 200 response to a GET is kept
// (as bytes) under its URL and the request's content-negotiation
// headers; a GET that fails or is refused is answered with the kept copy
// of a request that matches it, marked with [HeaderFallbackAge]. The
// fallback cache is shared by every caller, so it keeps only what RFC
// 9111 lets a shared cache keep: nothing for a request with
// Authorization or Cookie (unless the response says public), nothing
// marked private or no-store, nothing that sets a cookie, nothing that
// varies on a header the key does not hold. [Transport.KeepPrivate]
// makes it a private cache per set of credentials instead. Bodies over
// MaxBodyBytes are never kept.
//
// The guide docs/http.md tells the whole story.
package bulwarkhttp
