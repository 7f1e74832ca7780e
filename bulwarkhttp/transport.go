package bulwarkhttp

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/callvalue"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// Headers that the Transport reads or adds.
const (
	// HeaderIdempotencyKey is the request header that makes a request
	// idempotent (IETF draft-ietf-httpapi-idempotency-key-header): it may
	// be retried whatever its method, runs at most once per key on its
	// executor, and is forwarded to the server unchanged.
	HeaderIdempotencyKey = "Idempotency-Key"

	// HeaderFallbackAge is added to a response served from the
	// executor's fallback cache instead of the server: the age of the
	// kept copy in whole seconds, such as "12". A response from the
	// server never has it.
	HeaderFallbackAge = "Bulwark-Fallback-Age"

	// HeaderReplayed is added, with the value "true", to a response
	// replayed by the idempotency layer to a duplicate request: the
	// stored response of the request that ran, not a new one.
	HeaderReplayed = "Bulwark-Replayed"

	// HeaderBodyOmitted is added, with the value "true", to a replayed
	// response whose body was not stored because it was larger than
	// Transport.MaxBodyBytes: the status and headers are the stored ones
	// and the body is empty.
	HeaderBodyOmitted = "Bulwark-Body-Omitted"
)

// DefaultMaxBodyBytes is the MaxBodyBytes of a Transport that leaves it
// zero: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// drainLimit is how much of a failed attempt's streamed body is read
// before it is closed, so that its connection can be reused; a longer
// body costs its connection instead.
const drainLimit = 64 << 10

// Transport is an http.RoundTripper that runs every request through the
// layers of its executor in Stack: each attempt is one request to Base,
// and the layers decide whether it is retried, refused, replayed or
// answered from the fallback cache (see the package documentation).
//
// Set the fields before the first request and do not change them
// afterwards; the Transport is then safe for concurrent use by any number
// of goroutines, as http.RoundTripper requires. Only Stack is required. A
// Transport must not be copied after first use (it keeps a pool of the
// buffers that response bodies are read into).
//
// Bounded executors: each executor is made on demand, from the Stack's
// defaults, the first time a request names it. With the default Executor
// (the request's host) the hosts a program talks to decide how many
// executors exist, so a Stack makes at most pipeline.DefaultMaxOnDemand
// (1024) of them unless [pipeline.Stack.SetMaxOnDemand] says otherwise;
// a request for one more fails with an error wrapping
// pipeline.ErrUnknownExecutor, without contacting the host. Hosts chosen
// by an attacker (URLs from user input) thus cannot grow memory without
// bound. Configure the executors you know with Stack.Configure, which
// never counts against the bound, and SetMaxOnDemand(0) to refuse every
// other host.
type Transport struct {
	// Base sends each attempt. nil: http.DefaultTransport.
	Base http.RoundTripper

	// Stack runs every request through the layers of its executor.
	// Required: with a nil Stack every request fails with an error
	// wrapping pipeline.ErrInvalid.
	Stack *pipeline.Stack

	// Executor names the executor of a request (its breaker, fallback
	// cache, idempotency records). nil: the request's host, with its
	// port if the URL has one (req.URL.Host, or req.Host when the URL has
	// none), so that every host has its own circuit. An empty name fails
	// the request with an error wrapping pipeline.ErrInvalid.
	Executor func(req *http.Request) string

	// Classify decides what an attempt's outcome means to the layers:
	// nil for a success, an error for a failure; a failure marked with
	// bulwark.Final is the service's final answer (not retried, not
	// counted by the breaker, never answered from the fallback) and one
	// marked with retry.Permanent is not retried. It is called once per
	// attempt, either with the response (its body not yet read: it must
	// not read or close it) and a nil error, or with a nil response and
	// the error of Base. For a transport error, a nil result keeps the
	// error. A failed status is still a response: when the layers give
	// up, the caller gets it with a nil error. nil: [DefaultClassify].
	// Extend it rather than rewrite it:
	//
	//	Classify: func(resp *http.Response, err error) error {
	//		if resp != nil && resp.Header.Get("X-Maintenance") != "" {
	//			return errMaintenance // transient
	//		}
	//		return bulwarkhttp.DefaultClassify(resp, err)
	//	}
	Classify func(resp *http.Response, err error) error

	// Retryable reports whether a request may be sent more than once.
	// A request it refuses is sent once (its executor's retry layer
	// makes one attempt), unless the request's context asks otherwise
	// with [WithAttempts]. A request whose body cannot be replayed is
	// sent once whatever it says. nil: [DefaultRetryable].
	Retryable func(req *http.Request) bool

	// MaxBodyBytes is the largest response body, in bytes, read inside
	// the attempt: such a body is retried when its reading fails, can be
	// kept by the idempotency and fallback layers, and reaches the caller
	// from memory, with its connection already back in the pool (its
	// buffer is lent by the Transport, and Close gives it back). A
	// larger body is streamed to the caller: a failure while reading it
	// reaches the caller, and it is never kept (a duplicate of an
	// idempotent request gets the status and headers with an empty body
	// and [HeaderBodyOmitted]; a GET's copy is not kept for the
	// fallback). The same limit (DefaultMaxBodyBytes when negative)
	// bounds a request body without GetBody that is read to fingerprint
	// an idempotent request: a longer one gets no fingerprint and is sent
	// once. 0:
	// DefaultMaxBodyBytes (1 MiB). Negative: every response body is
	// streamed and nothing is kept.
	MaxBodyBytes int64

	// KeepPrivate makes each executor's fallback cache a private cache
	// for each set of credentials, for programs that know their
	// requests' credentials tell their users apart. false (the zero
	// value): the cache is shared by every request to the executor and
	// follows RFC 9111's rules for shared caches: a 200 to a GET is not
	// kept when the request carries Authorization or Cookie (unless the
	// response says public), nor when the response says private or
	// no-store, sets a cookie, or varies on a header the key does not
	// tell apart. true: responses to requests with credentials, and
	// private ones, are kept under a key that holds the SHA-256 of the
	// request's Authorization and Cookie values, and are served only to
	// requests with the same values; Set-Cookie fields are dropped from
	// the kept copy; no-store is still honoured. See docs/http.md.
	KeepPrivate bool

	// bufs keeps the buffers response bodies are read into; closing a
	// buffered body gives its buffer back.
	bufs bufferPool

	// chains are the executors' bound chains (see chains.go); chainsMu
	// serializes their additions.
	chains   atomic.Pointer[chains]
	chainsMu sync.Mutex
}

// NewClient returns an http.Client whose Transport runs every request
// through stack, with the zero values of every other Transport field. It
// is shorthand for (&Transport{Stack: stack}).Client().
func NewClient(stack *pipeline.Stack) *http.Client {
	return (&Transport{Stack: stack}).Client()
}

// Client returns an http.Client that sends its requests through t. The
// client has no Timeout of its own: the executor's breaker
// RequestTimeout bounds each request. Like any http.Client, it is safe
// for concurrent use.
func (t *Transport) Client() *http.Client {
	return &http.Client{Transport: t}
}

// CloseIdleConnections closes the idle connections of Base, if it has a
// CloseIdleConnections method (http.Transport does). http.Client's
// CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip sends req through the layers of its executor and returns the
// response, as http.RoundTripper says: a response for every status (the
// last one received when the retries of a transient status ran out), an
// error only when there is no response. The error of a refused request
// wraps bulwark.ErrRejected; that of a request Transport cannot run (a
// nil Stack, request or URL, an empty executor name, an executor beyond
// the Stack's bound, a WithAttempts below 1) wraps pipeline.ErrInvalid.
// req is not modified, and its body is always closed.
//
// A panic in a callback (Executor, Retryable, Classify) closes what the
// request holds (its body, the response being classified, the previous
// attempt's response) and then propagates.
//
// If req's context carries a bulwark.Report (bulwark.WithReport),
// RoundTrip records in it what the layers did: the attempts made, and
// whether the response was replayed, served from the fallback cache or
// refused. When that Report is the one of a pipeline call whose function
// sends req (pipeline.Do or Execute around code that uses the client),
// only FromCache is recorded: the enclosing call ran its function, so it
// was neither replayed nor refused because this request was, but its
// value is made of a cached response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	explicit, err := t.check(req)
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	rt := newRoundTrip(t, req)
	completed := false
	defer func() {
		if !completed { // a panic in a callback: release, then propagate
			rt.abort()
		}
	}()
	executor := t.executorOf(req)
	rt.fallback = rt.isGet && t.Stack.HasFallback(executor)

	var buf [4]pipeline.CallOption
	opts := buf[:0]
	if key := headerValue(req.Header, HeaderIdempotencyKey); key != "" {
		fp, err := rt.fingerprint()
		if err != nil {
			completed = true
			rt.abort()
			return nil, err
		}
		fp = scopedFingerprint(fp, req.Header) // private.go
		rt.keep = true
		opts = append(opts,
			pipeline.IdempotencyKeyParts(req.Method, req.URL.String(), key),
			pipeline.Fingerprint(fp))
	}
	if _, _, ok := idempotency.AttachedKey(req.Context()); ok {
		// A key on the request's context (idempotency.WithKey) instead
		// of the header: the idempotency layer keeps the answers too.
		rt.keep = true
	}
	if rt.fallback {
		opts = append(opts, pipeline.FallbackKey(rt.fallbackKey())) // private.go
	}
	if !rt.replayable() || (!explicit && !t.retryable(req)) {
		opts = append(opts, pipeline.NoRetry())
	}

	var res pipeline.Result[*answer]
	if run := t.chainOf(executor); run != nil && len(opts) == 0 {
		res.Value, res.Err = run(rt)
		res.Attempts = int(rt.attempts.Load())
		res.FromCache, res.Replayed, res.Rejected = rt.report.FromCache(), rt.report.Replayed(), rt.report.Rejected()
	} else {
		res = pipeline.Execute(rt, t.Stack, executor, attempt, opts...)
		if run == nil {
			t.bindChain(executor, res.Err)
		}
	}
	completed = true
	resp, err := rt.finish(res)
	if err != nil && rt.keep {
		err = explainKeyReuse(err) // private.go
	}
	if r := bulwark.ReportFrom(req.Context()); r != nil {
		if res.FromCache {
			r.SetFromCache()
		}
		if wait := rt.report.TakeAbandoned(0); wait != nil {
			// An attempt abandoned while it runs may still reach the
			// server: the caller's idempotency layer holds its key until
			// it ends, then releases it (the caller has no value for it).
			r.Abandon(callvalue.WithoutValue(wait))
		}
		if callvalue.Enclosing(req.Context(), r) {
			// The Report of a pipeline call whose function sent req: that
			// call ran; only its value's coming from a cache is its too.
			return resp, err
		}
		if res.Attempts > 0 {
			r.SetAttempts(res.Attempts)
		}
		if res.Replayed {
			r.SetReplayed()
		}
		if res.Rejected {
			r.SetRejected()
		}
	}
	return resp, err
}

// check reports what makes req impossible to run, and whether its
// context sets the number of attempts (WithAttempts).
func (t *Transport) check(req *http.Request) (attempts bool, err error) {
	switch {
	case t == nil:
		return false, fmt.Errorf("%w: bulwarkhttp: nil *Transport", pipeline.ErrInvalid)
	case req == nil:
		return false, fmt.Errorf("%w: bulwarkhttp: nil *http.Request", pipeline.ErrInvalid)
	case req.URL == nil:
		return false, fmt.Errorf("%w: bulwarkhttp: request with a nil URL", pipeline.ErrInvalid)
	case t.Stack == nil:
		return false, fmt.Errorf("%w: bulwarkhttp: Transport.Stack is nil", pipeline.ErrInvalid)
	}
	n, ok := retry.MaxAttemptsFrom(req.Context())
	if ok && n < 1 {
		return false, fmt.Errorf("%w: bulwarkhttp: WithAttempts is %d, must be at least 1 (1 turns retries off)", pipeline.ErrInvalid, n)
	}
	return ok, nil
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) executorOf(req *http.Request) string {
	if t.Executor != nil {
		return t.Executor(req)
	}
	if req.URL.Host != "" {
		return req.URL.Host
	}
	return req.Host
}

func (t *Transport) classify(resp *http.Response, err error) error {
	if t.Classify == nil {
		return DefaultClassify(resp, err)
	}
	c := t.Classify(resp, err)
	if c == nil && resp == nil {
		return err
	}
	return c
}

func (t *Transport) retryable(req *http.Request) bool {
	if t.Retryable != nil {
		return t.Retryable(req)
	}
	return DefaultRetryable(req)
}

func (t *Transport) maxBodyBytes() int64 {
	if t.MaxBodyBytes == 0 {
		return DefaultMaxBodyBytes
	}
	return t.MaxBodyBytes
}
