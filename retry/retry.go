// Package retry runs an operation again when it fails with a transient
// error, waiting between attempts with exponential backoff and jitter
// (github.com/cenkalti/backoff/v4's ExponentialBackOff), and honouring the
// waits that rate-limited services ask for.
//
// A [Retrier] holds a validated [Config] and is shared by every call;
// [Do] and [Middleware] are generic, so one Retrier serves every result
// type.
//
// What is never retried, whatever Config.IsRetryable says:
//
//   - an error marked with [Permanent] (the caller gets the error without
//     the marker);
//   - an error wrapping [bulwark.ErrRejected]: another layer (an open
//     circuit, a full bulkhead) refused the call without running it, and
//     asking again at once would only be refused again;
//   - anything once the caller's context is done.
//
// What is not retried by default: the service's final answer (an error
// wrapping [bulwark.ErrFinal], such as an HTTP 404 from [FromResponse] or
// a declined card marked with bulwark.Final), because the service answered
// and repeating the request cannot change the answer. That rule is
// [DefaultIsRetryable], the default Config.IsRetryable, which a custom
// predicate can extend or override. Permanent says only "do not retry";
// Final says "the service answered", which also means "do not retry" but
// tells the breaker and the fallback that the service is up.
//
// An error may ask for a minimum wait before the next attempt: [After]
// attaches one to any error, any error with a RetryAfter() time.Duration
// method works the same way, and [FromResponse] builds such an error from
// an HTTP 429 or 503 response with a Retry-After header. When the wait a
// call would need is longer than Config.MaxRetryAfter, or would end after
// the context's deadline or Config.MaxElapsedTime, Do gives up at once
// with an [*Error] saying why, instead of sleeping for nothing.
//
// A call that succeeds at the first attempt costs a function call and a
// context lookup: no allocation, no timer, and no clock read unless
// Config.MaxElapsedTime is set. The backoff state and the timer are built
// only when an attempt fails.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/cenkalti/backoff/v4"
)

// Retrier retries operations as its Config says. Build one with [New] and
// share it: a Retrier is immutable and safe for concurrent use by any
// number of calls, of any result type.
//
// The zero Retrier is ready to use and behaves as New(Config{}): three
// attempts with the default backoff. A Retrier with a [Budget] holds the
// budget's counters, shared by all its calls: share one Retrier among the
// calls to one service.
type Retrier struct {
	cfg    Config
	budget *budget // nil without Config.Budget
}

// New validates cfg and returns a Retrier that retries as it says. An
// invalid Config is an error wrapping [ErrInvalidConfig] that names every
// offending field; New never panics and never corrects a value silently.
func New(cfg Config) (*Retrier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Retrier{cfg: cfg}
	if cfg.Budget != nil {
		r.budget = newBudget(cfg.Budget)
	}
	return r, nil
}

// Reconfigure returns a new Retrier configured by cfg, as [New] does,
// that shares r's retry budget when cfg.Budget equals r's (the same
// Ratio, MinPerSecond and Window): the calls and retries of the current
// window go on counting, so that reconfiguring grants no fresh budget in
// the middle of an outage. With another Budget, or none, the new Retrier
// has its own. r is unchanged and may still be used (calls on both then
// draw on the shared budget). A nil r makes Reconfigure New; the errors
// are New's.
//
// Reconfigure is safe for concurrent use with r's calls.
func (r *Retrier) Reconfigure(cfg Config) (*Retrier, error) {
	n, err := New(cfg)
	if err != nil || r == nil {
		return n, err
	}
	if r.budget != nil && cfg.Budget != nil && *cfg.Budget == r.budget.cfg {
		n.budget = r.budget
	}
	return n, nil
}

// Do calls fn, and calls it again after a wait each time it fails with a
// retryable error, until it succeeds or Do stops. It returns the value of
// the last attempt, and:
//
//   - nil when an attempt succeeded;
//   - the attempt's error as it is when the error is not worth retrying:
//     marked with [Permanent] (the marker removed), a first attempt
//     refused without running (wrapping [bulwark.ErrRejected]), or refused
//     by Config.IsRetryable (by default, the service's final answer);
//   - otherwise an [*Error] that reports the attempts made and why Do
//     stopped (the attempts ran out, a wait was refused, the retry
//     [Budget] was spent, a retry was refused without running —
//     [ErrRetryRefused] — or ctx is done), and that unwraps to the last
//     error of an attempt that ran. A refused retry does not make the call
//     a rejection: the service failed the attempts before it.
//
// The first attempt always runs; fn is expected to honour ctx. fn gets
// ctx as given, except that a number of attempts attached with
// [WithMaxAttempts] is taken by Do and hidden from fn, so that the calls
// fn makes are not retried as this one is. Waits end the moment ctx is done, and Do then returns an
// *Error whose Reason is ctx's error (and cause), so that errors.Is works
// for both the context's error and the last attempt's error.
//
// Do records the number of attempts made in the call's [bulwark.Report]
// (bulwark.ReportFrom(ctx).SetAttempts), 1 for a first-try success, on
// every return except a panic. A panic in fn, IsRetryable, OnEvent or an
// error's RetryAfter method stops the timer Do holds and propagates
// unchanged; a Retrier keeps no state between calls, so the next call runs
// as usual.
//
// Do is safe for concurrent use. If r or fn is nil it returns an error
// wrapping [ErrInvalid] without calling anything, and records no attempt.
func Do[T any](ctx context.Context, r *Retrier, fn bulwark.Func[T]) (T, error) {
	if r == nil || fn == nil {
		var zero T
		if r == nil {
			return zero, errNilRetrier
		}
		return zero, errNilFunc
	}
	var start time.Time
	if r.cfg.MaxElapsedTime > 0 {
		start = time.Now()
	}
	if r.budget != nil {
		r.budget.calls.Add(1)
	}
	n, set, fnCtx := consume(ctx)
	v, err := fn(fnCtx)
	if err == nil {
		bulwark.ReportFrom(ctx).SetAttempts(1)
		return v, nil
	}
	return again(ctx, fnCtx, r, fn, start, n, set, v, err)
}

// Middleware returns a middleware that runs the next layer through [Do]
// with r: every call of the wrapped Func is retried as r says. When r or
// the wrapped Func is nil, neither building nor calling panics: every call
// returns an error wrapping [ErrInvalid]. The returned middleware and the
// Funcs it builds are safe for concurrent use if the wrapped Func is.
func Middleware[T any](r *Retrier) bulwark.Middleware[T] {
	return func(next bulwark.Func[T]) bulwark.Func[T] {
		return func(ctx context.Context) (T, error) {
			return Do(ctx, r, next)
		}
	}
}

// maxBackoffInterval is the largest interval handed to ExponentialBackOff,
// about 73 years: larger InitialInterval and MaxInterval values, up to
// math.MaxInt64, mean "as long as possible" and are treated as this.
const maxBackoffInterval = time.Duration(1 << 61)

// again is the retry loop, entered after the first attempt failed with
// (v, err). fn runs with fnCtx (ctx without WithMaxAttempts's n; set says
// whether there was one). start is when the first attempt began, zero
// unless MaxElapsedTime is set.
func again[T any](ctx, fnCtx context.Context, r *Retrier, fn bulwark.Func[T], start time.Time, n int, set bool, v T, err error) (T, error) {
	p := r.cfg.resolve()
	report := bulwark.ReportFrom(ctx)
	maxAttempts, invalid := p.maxAttemptsOf(n, set)
	if invalid != nil {
		return v, r.giveUp(ctx, report, 1, invalid, 0, err)
	}

	var eb backoff.ExponentialBackOff
	if !p.noWait {
		// ExponentialBackOff converts float64 products back to Durations
		// unchecked: an interval near math.MaxInt64 would come back
		// negative (a wait of 0). Capped at maxBackoffInterval, the
		// jittered wait stays below 2·maxBackoffInterval+1, in range.
		eb = backoff.ExponentialBackOff{
			InitialInterval:     min(p.initialInterval, maxBackoffInterval),
			RandomizationFactor: p.randomization,
			Multiplier:          p.multiplier,
			MaxInterval:         min(p.maxInterval, maxBackoffInterval),
			MaxElapsedTime:      0, // retry enforces its own budget, see below
			Stop:                backoff.Stop,
			Clock:               backoff.SystemClock,
		}
		eb.Reset()
	}

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()

	var prevV T // the result of the attempt before, once there was one
	var prevErr error
	for attempt := 1; ; {
		// The errors retry never retries, returned as they are.
		if pe, ok := findInChain[*permanentError](err); ok {
			report.SetAttempts(attempt)
			if pe == err {
				return v, pe.err
			}
			return v, err
		}
		if errors.Is(err, bulwark.ErrRejected) {
			if attempt > 1 {
				// A retry refused without running, after attempts that
				// ran: the call failed with the last of those; it was not
				// refused.
				report.ClearRejected()
				return prevV, r.giveUp(ctx, report, attempt-1, refused(err), 0, prevErr)
			}
			report.SetAttempts(attempt)
			return v, err
		}
		if ctx.Err() != nil {
			return v, r.giveUp(ctx, report, attempt, contextReason(ctx), 0, err)
		}
		if !r.retryable(err) {
			report.SetAttempts(attempt)
			return v, err
		}
		if attempt >= maxAttempts {
			return v, r.giveUp(ctx, report, attempt, ErrExhausted, 0, err)
		}

		// The wait: the backoff's, or longer if the error asks for it.
		var wait time.Duration
		if !p.noWait {
			wait = eb.NextBackOff()
		}
		if asked, ok := WaitOf(err); ok {
			if asked > p.maxRetryAfter {
				return v, r.giveUp(ctx, report, attempt, ErrRetryAfterTooLong, asked, err)
			}
			wait = max(wait, asked)
		}

		// Refuse a wait after which the next attempt could not run.
		deadline, hasDeadline := ctx.Deadline()
		if hasDeadline || r.cfg.MaxElapsedTime > 0 {
			end := time.Now().Add(wait)
			if hasDeadline && !end.Before(deadline) {
				return v, r.giveUp(ctx, report, attempt, ErrDeadline, wait, err)
			}
			if r.cfg.MaxElapsedTime > 0 && end.Sub(start) > r.cfg.MaxElapsedTime {
				return v, r.giveUp(ctx, report, attempt, ErrMaxElapsedTime, wait, err)
			}
		}

		if r.budget != nil && !r.budget.withdraw(time.Now()) {
			return v, r.giveUp(ctx, report, attempt, ErrBudgetExhausted, 0, err)
		}

		r.emit(ctx, bulwark.RetryAttempt, attempt, err, wait)
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-ctx.Done():
				return v, r.giveUp(ctx, report, attempt, contextReason(ctx), 0, err)
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return v, r.giveUp(ctx, report, attempt, contextReason(ctx), 0, err)
		}

		attempt++
		prevV, prevErr = v, err
		v, err = fn(fnCtx)
		if err == nil {
			report.SetAttempts(attempt)
			return v, nil
		}
	}
}

// giveUp ends a call that made attempt attempts, the last failing with
// last: it records the attempts, emits retry:exhausted and returns the
// *Error.
func (r *Retrier) giveUp(ctx context.Context, report *bulwark.Report, attempt int, reason error, wait time.Duration, last error) error {
	e := &Error{Name: r.cfg.Name, Attempts: attempt, Reason: reason, Wait: wait, Last: last}
	report.SetAttempts(attempt)
	r.emit(ctx, bulwark.RetryExhausted, attempt, e, 0)
	return e
}

// contextReason is the Reason of an *Error for a done context: its error,
// joined with its cause when the cause says more.
func contextReason(ctx context.Context) error {
	err := ctx.Err()
	cause := context.Cause(ctx)
	if cause == nil || cause == err {
		return err
	}
	if errors.Is(cause, err) {
		return cause
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// emit delivers an event to OnEvent, if there is one. No event is built
// without a listener.
func (r *Retrier) emit(ctx context.Context, kind bulwark.EventKind, attempt int, err error, wait time.Duration) {
	if r.cfg.OnEvent == nil {
		return
	}
	r.cfg.OnEvent(bulwark.Event{
		Kind:     kind,
		Time:     time.Now(),
		Err:      err,
		Duration: wait,
		Attempt:  attempt,
		Context:  ctx,
	})
}

// retryable asks Config.IsRetryable, or DefaultIsRetryable, about err.
func (r *Retrier) retryable(err error) bool {
	if r.cfg.IsRetryable != nil {
		return r.cfg.IsRetryable(err)
	}
	return DefaultIsRetryable(err)
}

// DefaultIsRetryable is the default [Config].IsRetryable: it reports
// whether a failed attempt's err is worth another attempt, which is true
// for every error except the service's final answer (one wrapping
// [bulwark.ErrFinal]: the service answered and refused the request on its
// merits, so the same request would get the same answer).
//
// Do never asks IsRetryable about the errors it never retries
// ([Permanent] ones, rejections, errors after the context is done), so
// the predicate need not handle them. Call it from your own IsRetryable to
// extend it rather than rewrite it:
//
//	IsRetryable: func(err error) bool {
//		return !errors.Is(err, errBadInput) && retry.DefaultIsRetryable(err)
//	}
//
// It is safe for concurrent use.
func DefaultIsRetryable(err error) bool {
	return !bulwark.IsFinal(err)
}
