package bulwarkhttp

import (
	"net/http"
	"strconv"
	"time"
)

// answer is one response as the layers see it and keep it: the
// idempotency layer stores it for duplicates and the fallback cache for
// failed GETs. Stores that encode values (a shared idempotency store)
// encode the exported fields. An answer is not modified once an attempt
// returned it, so it may be shared by any number of goroutines.
type answer struct {
	StatusCode int
	Status     string
	Proto      string
	ProtoMajor int
	ProtoMinor int
	Header     http.Header
	// Body is the whole body, unless BodyOmitted.
	Body []byte
	// BodyOmitted: the body was larger than MaxBodyBytes (or a stream)
	// and is not kept.
	BodyOmitted bool
	// Received is when the response arrived.
	Received time.Time
}

// response builds a response to req from a kept answer (a replay, or a
// fallback), with headers of its own and a body reading Body.
func (a *answer) response(req *http.Request) *http.Response {
	h := a.Header.Clone()
	if h == nil {
		h = make(http.Header)
	}
	if a.BodyOmitted {
		h.Del("Content-Length")
		h.Set(HeaderBodyOmitted, "true")
	}
	return &http.Response{
		Status:        a.Status,
		StatusCode:    a.StatusCode,
		Proto:         a.Proto,
		ProtoMajor:    a.ProtoMajor,
		ProtoMinor:    a.ProtoMinor,
		Header:        h,
		Body:          &bufferedBody{buf: a.Body},
		ContentLength: int64(len(a.Body)),
		Request:       req,
	}
}

// fallbackResponse is response marked with the copy's age.
func (a *answer) fallbackResponse(req *http.Request, now time.Time) *http.Response {
	r := a.response(req)
	age := max(now.Sub(a.Received), 0)
	r.Header.Set(HeaderFallbackAge, strconv.FormatInt(int64(age/time.Second), 10))
	return r
}

// replayedResponse is response marked as replayed.
func (a *answer) replayedResponse(req *http.Request) *http.Response {
	r := a.response(req)
	r.Header.Set(HeaderReplayed, "true")
	return r
}

// statusError is the failure of an attempt that received a response: a
// transient status, or the service's final answer. It carries the
// response, so that the caller gets it when the layers give up. It wraps
// what Classify returned, so errors.As and errors.Is see through it.
type statusError struct {
	ans *answer
	err error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }
