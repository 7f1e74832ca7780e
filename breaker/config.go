package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark"
)

// The defaults that zero Config fields stand for.
const (
	defaultFailureThreshold = 5
	defaultFailureWindow    = time.Minute
	defaultResetTimeout     = 30 * time.Second
	defaultSuccessThreshold = 2
	defaultRequestTimeout   = 10 * time.Second
	defaultSamplingWindow   = time.Minute
)

// minSamplingWindow is the shortest SamplingWindow accepted in ratio mode:
// the window is cut into ratioBuckets buckets, so its resolution is
// SamplingWindow/10.
const minSamplingWindow = 100 * time.Millisecond

// Config configures a [Breaker]. The zero value is ready to use: every zero
// field means the default given in its comment, so Config{} is a breaker
// that opens after 5 consecutive failures within a minute, probes again
// after 30 seconds, closes after 2 successful probes and gives every call
// 10 seconds.
//
// Negative counts and durations are errors reported by [New], except
// RequestTimeout, where a negative value disables the timeout. Any
// duration may be as long as math.MaxInt64, which means "as long as
// possible": the breaker's time arithmetic saturates, it never wraps.
type Config struct {
	// FailureThreshold is the number of consecutive failures, all inside
	// FailureWindow, that open the circuit. Default 5. Not used in ratio
	// mode (when FailureRatio is set).
	FailureThreshold int

	// FailureWindow is how long a failure counts towards FailureThreshold:
	// a failure older than this no longer counts. Default 1 minute. Not
	// used in ratio mode.
	FailureWindow time.Duration

	// ResetTimeout is how long the circuit stays OPEN before the next call
	// is let through as a HALF_OPEN probe. Default 30 seconds.
	ResetTimeout time.Duration

	// SuccessThreshold is the number of successful probes in HALF_OPEN
	// that close the circuit. Default 2.
	SuccessThreshold int

	// HalfOpenMaxCalls is the number of probes allowed to run at the same
	// time in HALF_OPEN; further calls are rejected with
	// [ErrTooManyProbes]. Default: SuccessThreshold.
	HalfOpenMaxCalls int

	// RequestTimeout is the deadline each call gets: the function receives
	// a context that ends after RequestTimeout, unless the caller's own
	// deadline is earlier (then the caller's context is passed through
	// unchanged). A call cut off by this timeout counts as a failure and
	// its error wraps [ErrTimeout]. Default 10 seconds; a negative value
	// disables the timeout.
	RequestTimeout time.Duration

	// IsFailure decides whether a call that returned a non-nil error
	// counts against the circuit. ctx is the caller's context (the one
	// passed to Do, before the breaker added its timeout). A nil error is
	// always a success and IsFailure is not called for it.
	//
	// When IsFailure returns false, the call counts as a success if the
	// service answered (a final answer such as an HTTP 404 is counted in
	// Stats.FinalAnswers too), and neither way if the call's context had
	// ended, the error is a context error (context.Canceled or
	// context.DeadlineExceeded) or a rejection by an inner layer (wrapping
	// bulwark.ErrRejected): a call cut short or never sent proves nothing
	// about the service.
	//
	// Default (nil): [DefaultIsFailure]. Every error is a failure, except
	// when ctx is done (the caller's own cancellation or deadline), errors
	// wrapping context.Canceled, the service's final answers (wrapping
	// bulwark.ErrFinal) and rejections (wrapping bulwark.ErrRejected). So
	// a timeout imposed by the breaker counts as a failure, the caller's
	// own cancellation counts neither way, and a 404 counts as a success.
	// To extend the default, call DefaultIsFailure from your own function.
	//
	// IsFailure is called on the caller's goroutine, never under a lock,
	// and must be safe for concurrent use. If it panics, the call counts
	// as a failure (a probe's slot is freed, a failed probe reopens the
	// circuit) and the panic then reaches the caller.
	IsFailure func(ctx context.Context, err error) bool

	// FailureRatio switches the breaker to ratio mode: the circuit opens
	// on a failure that brings the share of failures among the calls of
	// the last SamplingWindow to at least FailureRatio, provided at least
	// MinimumThroughput calls were made in that window. It must be in
	// (0, 1]. Default 0: ratio mode off, the consecutive rule
	// (FailureThreshold within FailureWindow) applies.
	FailureRatio float64

	// MinimumThroughput is the number of calls (successes and failures)
	// the sampling window must hold before FailureRatio can open the
	// circuit. Required, at least 1, in ratio mode; must be 0 otherwise.
	MinimumThroughput int

	// SamplingWindow is the sliding window over which ratio mode counts
	// calls. It slides in steps of a tenth of its length: old tenths drop
	// out one by one, never the whole window at once. Default 1 minute;
	// at least 100ms; must be 0 outside ratio mode.
	SamplingWindow time.Duration

	// AbandonOnTimeout makes the caller of a function wrapped by
	// [Middleware] return as soon as the call's context ends
	// (RequestTimeout or the caller's own cancellation) even if the
	// function ignores its context. The function then runs in its own
	// goroutine, which may outlive the call; its late result cannot change
	// the circuit. The abandoned call is recorded in the call's
	// bulwark.Report ([bulwark.Report.Abandon]) with a way to wait for its
	// late outcome: an idempotency layer above keeps its claim until the
	// function returns, and records its late value. Default false: the
	// breaker calls the function on the caller's goroutine and waits for
	// it.
	//
	// [Do] always waits: handing its function to a goroutine would force
	// every function passed to Do onto the heap, an allocation per call
	// even with the option off. To abandon a function you hold, call
	// Middleware(b)(fn)(ctx), or better, wrap it once.
	AbandonOnTimeout bool

	// OnEvent receives circuit events (circuit:opened, circuit:half-open,
	// circuit:closed, with the statistics as a [Stats] in Event.Detail)
	// and per-call events (request:success, request:failure,
	// request:rejected). Event.Executor is the breaker's name. Circuit
	// events carry Event.Seq, numbered 1, 2, 3, ... per breaker in the
	// order the changes were made: changes racing on different goroutines
	// can be delivered out of that order (see docs/breaker.md). It is
	// called synchronously, never under a lock. If it panics, the panic
	// reaches the caller after the call was counted and its probe slot
	// freed, and the state change is complete. Default nil: no events,
	// none built.
	OnEvent bulwark.Listener

	// OnSample receives the circuit events (as OnEvent does) and the
	// request:success and request:failure events of the calls in the
	// breaker's latency sample only, with Event.Sampled set: never a
	// rejection, never the other calls. It is for a duration histogram
	// that must not cost every call: unlike OnEvent, it leaves the CLOSED
	// fast path as it is, allocation-free and without a clock read for
	// the calls that are not sampled.
	//
	// The sample is the one Stats.MeanLatency is taken from: the breaker
	// counts successes in stripes (shards, several per processor, a
	// goroutine keeping its stripe from call to call), and the call made
	// when its stripe's success count is 63 modulo 64 is measured: about
	// one success in 64. A failure is sampled when it happens at that
	// count. Failures do not move the count, so on average one failure in
	// 64 is sampled too, but in clumps: during a run of failures without
	// a success, a stripe sitting on that count samples every one of them
	// and the others none. The rule is the same on every path (request
	// timeout, ratio mode, OnEvent set), so the rate does not change with
	// the configuration; the calls of [Breaker.Allow] are sampled only
	// where Allow measures them (outside its allocation-free CLOSED case:
	// ratio mode, OnEvent set, HALF_OPEN). The number of sampled events
	// is not the number of calls: Stats has the exact counts. Precedent:
	// the Go runtime times one goroutine transition in 8 for its
	// /sched/latencies:seconds histogram (gTrackingPeriod, used by
	// casgstatus in runtime/proc.go).
	//
	// When OnEvent is set too, OnEvent gets every event (with Sampled set
	// on the sampled ones) and OnSample its share, after OnEvent. OnSample
	// is called as OnEvent is: synchronously, never under a lock; if it
	// panics, the panic reaches the caller after the call was counted.
	// A sampled call costs an event and the listener; averaged over the
	// 64 calls, that adds a few nanoseconds to the fast path (see
	// docs/breaker.md). Default nil: no sample events.
	OnSample bulwark.Listener

	// Logger, if set, logs every state change: Warn when the circuit
	// opens, Info otherwise, with the breaker's name and counts and the
	// change's seq (as Event.Seq). A panicking handler is treated as a
	// panicking OnEvent. Default nil: no logging.
	Logger *slog.Logger
}

// ConfigError reports an invalid [Config] field. [New], [NewGroup] and
// [Group.Configure] return it; use errors.As to read the field. It wraps
// [ErrInvalid].
type ConfigError struct {
	// Name is the breaker's (executor's) name; empty for a Group's
	// defaults.
	Name string
	// Field is the name of the Config field, such as "FailureThreshold".
	Field string
	// Reason says what is wrong with its value.
	Reason string
}

// Error returns `breaker "name": invalid Config.Field: reason` (without
// the name part when Name is empty).
func (e *ConfigError) Error() string {
	prefix := "breaker: "
	if e.Name != "" {
		prefix = "breaker " + strconv.Quote(e.Name) + ": "
	}
	return prefix + "invalid Config." + e.Field + ": " + e.Reason
}

// Unwrap returns [ErrInvalid].
func (e *ConfigError) Unwrap() error { return ErrInvalid }

// settings is a validated Config with the defaults filled in. A Breaker
// holds one behind an atomic pointer so that a Group can swap it.
type settings struct {
	failureThreshold int
	failureWindow    time.Duration
	resetTimeout     time.Duration
	successThreshold int
	halfOpenMax      int
	requestTimeout   time.Duration // <= 0: no timeout
	isFailure        func(context.Context, error) bool
	ratio            float64 // 0: consecutive mode
	minThroughput    int
	samplingWindow   time.Duration
	abandon          bool
	onEvent          bulwark.Listener
	onSample         bulwark.Listener
	logger           *slog.Logger
}

// timed reports whether CLOSED calls under s take the slow path, which
// reads the clock: for the request timeout, the latency of events or the
// ratio window's buckets; or runs fn in its own goroutine (abandon).
func (s *settings) timed() bool {
	return s.requestTimeout > 0 || s.onEvent != nil || s.ratio > 0 || s.abandon
}

func negative(field string, v any) *ConfigError {
	return &ConfigError{Field: field, Reason: fmt.Sprintf("%v is negative", v)}
}

// newSettings validates cfg and fills in the defaults.
func newSettings(cfg Config) (*settings, *ConfigError) {
	s := &settings{
		failureThreshold: cfg.FailureThreshold,
		failureWindow:    cfg.FailureWindow,
		resetTimeout:     cfg.ResetTimeout,
		successThreshold: cfg.SuccessThreshold,
		halfOpenMax:      cfg.HalfOpenMaxCalls,
		requestTimeout:   cfg.RequestTimeout,
		isFailure:        cfg.IsFailure,
		ratio:            cfg.FailureRatio,
		minThroughput:    cfg.MinimumThroughput,
		samplingWindow:   cfg.SamplingWindow,
		abandon:          cfg.AbandonOnTimeout,
		onEvent:          cfg.OnEvent,
		onSample:         cfg.OnSample,
		logger:           cfg.Logger,
	}
	switch {
	case cfg.FailureThreshold < 0:
		return nil, negative("FailureThreshold", cfg.FailureThreshold)
	case cfg.FailureWindow < 0:
		return nil, negative("FailureWindow", cfg.FailureWindow)
	case cfg.ResetTimeout < 0:
		return nil, negative("ResetTimeout", cfg.ResetTimeout)
	case cfg.SuccessThreshold < 0:
		return nil, negative("SuccessThreshold", cfg.SuccessThreshold)
	case cfg.HalfOpenMaxCalls < 0:
		return nil, negative("HalfOpenMaxCalls", cfg.HalfOpenMaxCalls)
	case cfg.MinimumThroughput < 0:
		return nil, negative("MinimumThroughput", cfg.MinimumThroughput)
	case cfg.SamplingWindow < 0:
		return nil, negative("SamplingWindow", cfg.SamplingWindow)
	case math.IsNaN(cfg.FailureRatio) || cfg.FailureRatio < 0 || cfg.FailureRatio > 1:
		return nil, &ConfigError{Field: "FailureRatio", Reason: fmt.Sprintf("%v is outside (0, 1]", cfg.FailureRatio)}
	}
	if cfg.FailureRatio > 0 {
		switch {
		case cfg.MinimumThroughput < 1:
			return nil, &ConfigError{Field: "MinimumThroughput", Reason: "must be at least 1 in ratio mode (FailureRatio is set)"}
		case cfg.SamplingWindow != 0 && cfg.SamplingWindow < minSamplingWindow:
			return nil, &ConfigError{Field: "SamplingWindow", Reason: fmt.Sprintf("%v is shorter than the minimum %v", cfg.SamplingWindow, minSamplingWindow)}
		case cfg.FailureThreshold != 0:
			return nil, &ConfigError{Field: "FailureThreshold", Reason: "has no effect in ratio mode (FailureRatio is set); leave it 0"}
		case cfg.FailureWindow != 0:
			return nil, &ConfigError{Field: "FailureWindow", Reason: "has no effect in ratio mode (FailureRatio is set); use SamplingWindow"}
		}
	} else {
		switch {
		case cfg.MinimumThroughput != 0:
			return nil, &ConfigError{Field: "MinimumThroughput", Reason: "has no effect without FailureRatio; leave it 0"}
		case cfg.SamplingWindow != 0:
			return nil, &ConfigError{Field: "SamplingWindow", Reason: "has no effect without FailureRatio; leave it 0"}
		}
	}
	if s.failureThreshold == 0 {
		s.failureThreshold = defaultFailureThreshold
	}
	if s.failureWindow == 0 {
		s.failureWindow = defaultFailureWindow
	}
	if s.resetTimeout == 0 {
		s.resetTimeout = defaultResetTimeout
	}
	if s.successThreshold == 0 {
		s.successThreshold = defaultSuccessThreshold
	}
	if s.halfOpenMax == 0 {
		s.halfOpenMax = s.successThreshold
	}
	if s.requestTimeout == 0 {
		s.requestTimeout = defaultRequestTimeout
	}
	if s.ratio > 0 && s.samplingWindow == 0 {
		s.samplingWindow = defaultSamplingWindow
	}
	return s, nil
}

// failure classifies a non-nil error: true if it counts against the circuit.
func (s *settings) failure(ctx context.Context, err error) bool {
	if s.isFailure != nil {
		return s.isFailure(ctx, err)
	}
	return DefaultIsFailure(ctx, err)
}

// DefaultIsFailure is the default [Config.IsFailure]: it reports whether
// the non-nil err of a call made with the caller's context ctx counts
// against the circuit. It returns false when ctx is done (the caller gave
// up or ran out of time: that says nothing about the service), when err
// wraps context.Canceled, when err is the service's final answer
// ([bulwark.IsFinal]: the service is up and refused the request on its
// merits) and when err wraps [bulwark.ErrRejected] (an inner layer, such
// as a bulkhead, refused the call before it reached the service); true
// for every other error, a timeout of the breaker's own included.
//
// Call it from your own IsFailure to extend it rather than rewrite it:
//
//	IsFailure: func(ctx context.Context, err error) bool {
//		return !errors.Is(err, errQuotaExceeded) && breaker.DefaultIsFailure(ctx, err)
//	}
//
// It is safe for concurrent use.
func DefaultIsFailure(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, context.Canceled) &&
		!bulwark.IsFinal(err) && !errors.Is(err, bulwark.ErrRejected)
}
