package bulwarkhttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/internal/callvalue"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

// skipFallback answers the fallback layer's question "skip this call?"
// with yes. It is an immutable, empty context.
var skipFallback = cache.SkipFallback(context.Background())

// roundTripKey is the context key under which a roundTrip finds itself.
type roundTripKey struct{}

// roundTrip is one request on its way through the layers. It is also the
// context the request runs through the pipeline with: the request's own
// context, with the state the attempts share. One allocation holds both.
type roundTrip struct {
	context.Context // the request's

	t     *Transport
	req   *http.Request
	base  http.RoundTripper
	limit int64
	isGet bool
	// perCall: the request's context carries per-call values
	// (WithAttempts, idempotency.WithKey...), which Base must not see.
	perCall bool
	// fallback: a GET to an executor with a Fallback layer, whose 200s
	// are kept.
	fallback bool
	keep     bool // the idempotency layer may store the answers

	// skip makes the fallback layer leave the call alone: set while the
	// last attempt's outcome must not be kept (a success other than a
	// complete 200 to a GET) or the request is not a GET.
	skip atomic.Bool

	// The request body. first is sent by the first attempt (sent, below);
	// later ones send a copy of body, or of req.GetBody's.
	first io.ReadCloser
	body  []byte // the whole body, when it was read to fingerprint it

	mu   sync.Mutex
	last *received // the last attempt's response, while not handed over
	// holder (under mu) is the streamed body that keeps the call's
	// context alive until it ends.
	holder *liveBody

	// The call's context (see callcontext.go); valid when callMade.
	call callContext

	// first1 holds the first attempt's response, so that a request
	// answered at the first attempt costs one allocation less; later
	// attempts allocate their own. Taken once (taken).
	first1 received

	// What the layers did, when they run as a bound chain (chains.go).
	report bulwark.Report

	// Flags and counters, side by side so that they share words:
	//   - sent: the first body was handed to an attempt (or closed);
	//   - made: the breaker made the call's context through
	//     makeCallContext, or the first attempt started (a breaker
	//     inside Base then makes its own);
	//   - attempts: the attempts made, when the layers run as a bound
	//     chain;
	//   - callMade: call was made by the breaker (set before the first
	//     attempt, read by attempts);
	//   - done (under mu): RoundTrip has returned: late attempts clean up
	//     alone;
	//   - released (under mu): RoundTrip released the call's context;
	//   - taken: first1 is in use (set by the first attempt only).
	sent     atomic.Bool
	made     atomic.Bool
	attempts atomic.Int32
	callMade bool
	done     bool
	released bool
	taken    bool

	// What the request says about keeping its copy in the fallback
	// (private.go). Last, in the flags' padding.
	priv privacy
}

// received is the response of one attempt, with what it holds. The
// answer and the buffered body live in it, so that a response costs one
// allocation for the three.
type received struct {
	ans    *answer // &answer below; a pointer, so that comparing is cheap
	answer answer
	resp   *http.Response // its Body is not yet set for the caller
	live   *liveBody      // a streamed body; nil when buffered
	buf    []byte         // a buffered body
	// body is the caller's body, when buffered; its err is the error met
	// while buffering a failed status.
	body bufferedBody
}

func newRoundTrip(t *Transport, req *http.Request) *roundTrip {
	rt := &roundTrip{
		Context: req.Context(),
		t:       t,
		req:     req,
		base:    t.base(),
		limit:   t.maxBodyBytes(),
		isGet:   req.Method == http.MethodGet || req.Method == "",
		first:   req.Body,
		perCall: req.Context().Value(callvalue.Marker{}) != nil,
	}
	rt.skip.Store(!rt.isGet)
	return rt
}

// Value answers for the roundTrip itself, and makes the fallback layer
// skip the call when it must (see skip).
func (rt *roundTrip) Value(key any) any {
	switch key.(type) {
	case roundTripKey:
		return rt
	case bulwark.ReportKey:
		// The layers' report when they run as a bound chain; through
		// pipeline.Execute, its call's report comes first.
		return &rt.report
	case breaker.CallContextKey:
		if !rt.made.Load() {
			return breaker.CallContextFunc(makeCallContext)
		}
	}
	if rt.skip.Load() {
		if v := skipFallback.Value(key); v != nil {
			return v
		}
	}
	return rt.Context.Value(key)
}

// hasBody reports whether the request has a body to send.
func (rt *roundTrip) hasBody() bool {
	return rt.req.Body != nil && rt.req.Body != http.NoBody
}

// replayable reports whether the request's body can be sent again.
func (rt *roundTrip) replayable() bool {
	return !rt.hasBody() || rt.body != nil || rt.req.GetBody != nil
}

// fingerprint returns the hex SHA-256 of the request's body ("" without
// one). A body without GetBody is read into memory, up to the limit, and
// then sent from there (so it becomes replayable); a longer one gets no
// fingerprint and is sent once.
func (rt *roundTrip) fingerprint() (string, error) {
	if !rt.hasBody() {
		return "", nil
	}
	h := sha256.New()
	if rt.req.GetBody != nil {
		b, err := rt.req.GetBody()
		if err != nil {
			return "", fmt.Errorf("bulwarkhttp: Request.GetBody: %w", err)
		}
		_, err = io.Copy(h, b)
		_ = b.Close()
		if err != nil {
			return "", fmt.Errorf("bulwarkhttp: reading the request body to fingerprint it: %w", err)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	limit := rt.limit
	if limit < 0 {
		limit = DefaultMaxBodyBytes
	}
	buf, complete, err := readBody(rt.req.Body, limit, rt.req.ContentLength)
	if err != nil {
		return "", fmt.Errorf("bulwarkhttp: reading the request body to fingerprint it: %w", err)
	}
	if !complete {
		rt.first = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), rt.req.Body), rt.req.Body}
		return "", nil
	}
	_ = rt.req.Body.Close()
	rt.body = buf
	rt.first = io.NopCloser(bytes.NewReader(buf))
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// bodyFor returns the body of the next attempt.
func (rt *roundTrip) bodyFor() (io.ReadCloser, error) {
	if !rt.hasBody() {
		return rt.req.Body, nil
	}
	if rt.sent.CompareAndSwap(false, true) {
		return rt.first, nil
	}
	if rt.body != nil {
		return io.NopCloser(bytes.NewReader(rt.body)), nil
	}
	if rt.req.GetBody == nil {
		return nil, errors.New("bulwarkhttp: the request body cannot be sent again (no GetBody)")
	}
	b, err := rt.req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("bulwarkhttp: Request.GetBody: %w", err)
	}
	return b, nil
}

// attempt is the function every call runs through the layers: one
// request to Base.
func attempt(ctx context.Context) (*answer, error) {
	return ctx.Value(roundTripKey{}).(*roundTrip).attempt(ctx)
}

func (rt *roundTrip) attempt(ctx context.Context) (*answer, error) {
	rt.attempts.Add(1)
	rt.made.Store(true) // a breaker inside Base makes its own context
	rt.handOver(nil)    // drain and close the previous attempt's response
	rt.skip.Store(!rt.isGet)

	body, err := rt.bodyFor()
	if err != nil {
		return nil, retry.Permanent(err)
	}
	// Without a call context of the breaker's, per-call values to hide
	// and a body of its own, the attempt's request is the request itself
	// (Base must not change it, as RoundTrip must not): one allocation
	// less. (Compared by flags: contexts and bodies may be of types that
	// cannot be compared.)
	areq := rt.req
	if rt.callMade || rt.hasBody() || rt.perCall {
		areq = rt.req.WithContext(rt.attemptContext())
		areq.Body = body
	}

	resp, err := rt.base.RoundTrip(areq)
	if err != nil {
		return nil, rt.t.classify(nil, err)
	}
	failure := classifyResponse(rt.t, resp)
	r := rt.newReceived()
	r.resp = resp
	r.answer = answer{
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Proto:      resp.Proto,
		ProtoMajor: resp.ProtoMajor,
		ProtoMinor: resp.ProtoMinor,
		Header:     resp.Header,
	}
	r.ans = &r.answer

	complete := false
	var box *[]byte // the pool's buffer the body is read into
	if !streamed(resp, rt.limit) {
		var readErr error
		size := readSize(rt.limit, resp.ContentLength)
		if rt.keep || (rt.fallback && failure == nil && resp.StatusCode == http.StatusOK) {
			// Likely kept (see keepable): a buffer of its own, to size.
			r.buf, complete, readErr = readBodyInto(resp.Body, make([]byte, 0, size), rt.limit)
		} else {
			box = rt.t.bufs.get(size)
			r.buf, complete, readErr = readBodyInto(resp.Body, *box, rt.limit)
		}
		switch {
		case readErr != nil && failure == nil:
			// A body cut short: the attempt failed, like any network
			// failure, and is retried if it may be.
			_ = resp.Body.Close()
			return nil, fmt.Errorf("bulwarkhttp: reading the body of %s: %w", resp.Status, readErr)
		case readErr != nil:
			r.body.err = readErr // the failed status stands; the body ends with the error
			complete = true
		}
	}
	if complete {
		_ = resp.Body.Close()
		if r.body.err == nil {
			r.ans.Body = r.buf
		}
	} else {
		r.live = &liveBody{prefix: r.buf, rc: resp.Body, rt: rt}
		r.ans.BodyOmitted = true
	}

	keepable := rt.fallback && failure == nil && resp.StatusCode == http.StatusOK && !r.ans.BodyOmitted
	dropCookies := false
	if keepable {
		keepable, dropCookies = rt.priv.mayKeep(resp.Header, rt.keep)
	}
	if rt.keep || keepable {
		// A kept answer lives apart from the response (which it must
		// not hold on to), with headers of its own: the caller may
		// change resp.Header.
		kept := r.answer
		kept.Header = resp.Header.Clone()
		if dropCookies {
			kept.Header.Del("Set-Cookie")
		}
		kept.Received = time.Now()
		r.ans = &kept
	}
	if failure == nil {
		rt.skip.Store(!keepable)
	}
	if box != nil && complete && r.ans == &r.answer {
		// Nothing keeps the buffer but the caller's body, whose Close
		// gives it back to the pool (see response).
		*box = r.buf[:0] // it may have grown out of the pool's
		r.body.box = box
	}

	// An attempt that ends after RoundTrip returned (the breaker abandoned
	// it) hands its response to nobody, but still reports what the
	// server answered: the idempotency layer, which kept the key while
	// the attempt ran, records that answer rather than freeing the key
	// for a second request. (A streamed body is not kept either way.)
	rt.handOver(r)
	if failure != nil {
		return r.ans, &statusError{ans: r.ans, err: failure}
	}
	return r.ans, nil
}

// newReceived returns an empty received for an attempt's response: first1
// for the first attempt, a new one for later ones. Attempts run one after
// the other (each starts after the previous one returned), so only the
// first reads or sets taken.
func (rt *roundTrip) newReceived() *received {
	if !rt.taken {
		rt.taken = true
		return &rt.first1
	}
	return new(received)
}

// classifyResponse asks t to classify resp, closing resp if Classify
// panics.
func classifyResponse(t *Transport, resp *http.Response) error {
	returned := false
	defer func() {
		if !returned {
			_ = resp.Body.Close()
		}
	}()
	err := t.classify(resp, nil)
	returned = true
	return err
}

// handOver makes r the last attempt's response, draining and closing the
// one before. It reports false, and closes r, when RoundTrip has already
// returned (an attempt the breaker abandoned).
func (rt *roundTrip) handOver(r *received) bool {
	rt.mu.Lock()
	prev := rt.last
	done := rt.done
	if !done {
		rt.last = r
	}
	rt.mu.Unlock()
	if prev != nil {
		prev.discard()
	}
	if done && r != nil {
		r.discard()
	}
	return !done
}

// discard drains (bounded) and closes a response nobody will read.
func (r *received) discard() {
	if r.live != nil {
		r.live.drain()
	}
}

// abort ends a request that will not finish (RoundTrip refused it, or a
// callback panicked): it releases the call's context and closes the body
// if it was not sent and the last attempt's response.
func (rt *roundTrip) abort() {
	rt.mu.Lock()
	last := rt.last
	rt.last, rt.done = nil, true
	rt.holdLocked(last)
	end := rt.releaseLocked()
	rt.mu.Unlock()
	if end {
		rt.call.cancel()
	}
	if last != nil {
		last.discard()
	}
	if rt.hasBody() && rt.sent.CompareAndSwap(false, true) {
		_ = rt.first.Close()
	}
}

// finish turns the outcome of the call into RoundTrip's result.
func (rt *roundTrip) finish(res pipeline.Result[*answer]) (*http.Response, error) {
	rt.mu.Lock()
	last := rt.last
	rt.last, rt.done = nil, true
	rt.holdLocked(last)
	end := rt.releaseLocked()
	rt.mu.Unlock()
	if end {
		rt.call.cancel()
	}
	if rt.hasBody() && rt.sent.CompareAndSwap(false, true) {
		_ = rt.first.Close() // nothing was sent
	}

	ans, err := res.Value, res.Err
	if err != nil {
		// A status is a response, unless the caller gave up.
		var se *statusError
		if errors.As(err, &se) && rt.Context.Err() == nil {
			ans, err = se.ans, nil
		}
	}
	if err == nil && ans == nil {
		err = errors.New("bulwarkhttp: the layers returned no response and no error")
	}
	switch {
	case err != nil:
		if last != nil {
			last.discard()
		}
		return nil, err
	case last != nil && ans == last.ans && !res.FromCache && !res.Replayed:
		return last.response(rt), nil
	}
	if last != nil {
		last.discard()
	}
	switch {
	case res.FromCache:
		return ans.fallbackResponse(rt.req, time.Now()), nil
	case res.Replayed:
		return ans.replayedResponse(rt.req), nil
	}
	// The answer of an identical request that ran at the same time in
	// this process (the idempotency layer shares it).
	return ans.replayedResponse(rt.req), nil
}

// response hands the response received to the caller.
func (r *received) response(rt *roundTrip) *http.Response {
	resp := r.resp
	if r.live != nil {
		resp.Body = r.live
	} else {
		r.body.buf = r.buf
		if r.body.box != nil {
			r.body.pool = &rt.t.bufs
		}
		resp.Body = &r.body
	}
	resp.Request = rt.req
	return resp
}
