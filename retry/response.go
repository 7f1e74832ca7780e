package retry

import (
	"math"

	"github.com/bulwark-go/bulwark"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HTTPError is an HTTP response with an error status, as [FromResponse]
// reports it. Its RetryAfter method gives the wait the server asked for,
// which [Do] honours as a minimum wait before the next attempt. Nothing
// modifies an HTTPError after FromResponse returns it, so it may be read
// from any goroutine.
type HTTPError struct {
	// StatusCode is the response's status code, such as 503.
	StatusCode int
	// Status is the response's status line, such as
	// "503 Service Unavailable".
	Status string
	// Wait is the wait the Retry-After header asked for, zero when the
	// status is not 429 or 503, the header is missing or malformed, or
	// its date has passed.
	Wait time.Duration
}

// Error describes the status, for example
// "retry: HTTP 503 Service Unavailable (Retry-After 2s)".
func (e *HTTPError) Error() string {
	status := e.Status
	if status == "" {
		status = strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	}
	if e.Wait > 0 {
		return "retry: HTTP " + status + " (Retry-After " + e.Wait.String() + ")"
	}
	return "retry: HTTP " + status
}

// RetryAfter returns Wait: the minimum wait before the next attempt.
func (e *HTTPError) RetryAfter() time.Duration { return e.Wait }

// FromResponse turns an HTTP response with an error status (400 or above)
// into an error for [Do], and returns nil for any other response (and for
// a nil one). It does not read or close the body.
//
// The error is an [*HTTPError]. For 429 Too Many Requests and 503 Service
// Unavailable it carries the Retry-After header's wait, in either form RFC
// 9110 allows: delta-seconds ("120") or an HTTP-date, which is taken
// relative to the response's Date header when present (so the server's
// clock, not the client's, decides) and to the current time otherwise. A
// malformed header is ignored, and the next wait is the backoff's.
//
// Statuses that repeating the same request cannot fix are marked
// [Permanent], so Do returns them at once: every 4xx except 408 Request
// Timeout, 425 Too Early and 429 Too Many Requests, and 501 Not
// Implemented and 505 HTTP Version Not Supported. The 4xx among them are
// also the service's final answer ([bulwark.Final]): the service is up and
// refused this request, so the breaker does not count them as failures
// and the fallback cache does not answer them. 501 and 505 are permanent
// but not final: the endpoint cannot serve the request at all, which the
// breaker should see. Every other 5xx is retryable. errors.As finds the
// *HTTPError in every case.
//
// FromResponse is safe for concurrent use.
func FromResponse(resp *http.Response) error {
	if resp == nil || resp.StatusCode < 400 {
		return nil
	}
	e := &HTTPError{StatusCode: resp.StatusCode, Status: resp.Status}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if v := resp.Header.Get("Retry-After"); v != "" {
			now := time.Now()
			if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
				now = date
			}
			e.Wait, _ = parseRetryAfter(v, now)
		}
	}
	switch {
	case retryableStatus(resp.StatusCode):
		return e
	case resp.StatusCode < 500:
		return Permanent(bulwark.Final(e))
	}
	return Permanent(e)
}

// retryableStatus reports whether a request that got code may succeed if
// repeated unchanged.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return false
	}
	return code >= 500
}

// parseRetryAfter parses a Retry-After value (RFC 9110 section 10.2.3):
// delta-seconds, or an HTTP-date taken relative to now. A date in the past
// is a zero wait; a delta too large for a Duration is the longest
// Duration. It reports false for a malformed value.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		// delta-seconds = 1*DIGIT; no sign, no fraction.
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return 0, false
			}
		}
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil || secs > uint64(math.MaxInt64/int64(time.Second)) {
			return time.Duration(math.MaxInt64), true // digits only: overflow
		}
		return time.Duration(secs) * time.Second, true
	}
	date, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(date.Sub(now), 0), true
}
