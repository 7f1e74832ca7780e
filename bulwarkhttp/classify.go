package bulwarkhttp

import (
	"net/http"

	"github.com/bulwark-go/bulwark/retry"
)

// DefaultClassify is the default Transport.Classify. For a transport
// error (resp is nil) it returns err: network errors are transient, and
// the layers themselves never retry or count the caller's cancellation.
// For a response it returns retry.FromResponse(resp): nil for 1xx, 2xx
// and 3xx; a retryable *retry.HTTPError for 408, 425, 429 and every 5xx
// but 501 and 505 (with the Retry-After wait of a 429 or 503, in seconds
// or as an HTTP-date); the service's final answer (bulwark.Final, also
// retry.Permanent) for every other 4xx; a permanent but not final error
// for 501 and 505, which the breaker counts. It does not read the body.
// It is safe for concurrent use.
func DefaultClassify(resp *http.Response, err error) error {
	if resp == nil {
		return err
	}
	return retry.FromResponse(resp)
}

// DefaultRetryable is the default Transport.Retryable: it reports whether
// req may be sent more than once, which holds for the methods RFC 9110
// defines as idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) and for
// any request carrying an Idempotency-Key header. A POST or PATCH without
// one is sent once. It is safe for concurrent use.
func DefaultRetryable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return headerValue(req.Header, HeaderIdempotencyKey) != ""
}
