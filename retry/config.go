package retry

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bulwark-go/bulwark"
)

// Defaults for the zero fields of a [Config].
const (
	DefaultMaxAttempts         = 3
	DefaultInitialInterval     = 500 * time.Millisecond
	DefaultMultiplier          = 1.5
	DefaultRandomizationFactor = 0.5
	DefaultMaxInterval         = 60 * time.Second
	DefaultMaxRetryAfter       = 5 * time.Minute
)

// Config says how a [Retrier] retries. The zero Config is valid: every zero
// field means the default its comment states. [New] rejects invalid values
// with an error naming the field; nothing is silently corrected. New
// copies the Config, so changing it afterwards has no effect on the
// Retrier.
//
// The waits between attempts grow exponentially with jitter, computed by
// github.com/cenkalti/backoff/v4's ExponentialBackOff: the wait after the
// k-th failed attempt is drawn uniformly from
// [i·(1−RandomizationFactor), i·(1+RandomizationFactor)] where
// i = min(InitialInterval·Multiplier^(k−1), MaxInterval).
type Config struct {
	// Name names the retrier (in a pipeline, the executor it retries for;
	// the pipeline sets it) in the message of its [*Error], which also
	// carries it. Empty (the default): the message says only "retry".
	Name string

	// MaxAttempts is the most times the operation runs, the first call
	// included; 1 disables retries. Zero means 3. Negative is an error.
	MaxAttempts int

	// InitialInterval is the interval after the first failed attempt,
	// before jitter. Zero means 500ms. Negative is an error. Intervals
	// saturate: values beyond 2^61ns (about 73 years), up to
	// math.MaxInt64, mean "as long as possible" and are treated as that.
	InitialInterval time.Duration

	// Multiplier grows the interval after each wait. Zero means 1.5.
	// Below 1 (or NaN, or infinite) is an error.
	Multiplier float64

	// RandomizationFactor spreads each wait over ±RandomizationFactor of
	// its interval, so that clients that failed together do not all retry
	// at the same instant. Zero means 0.5; set NoJitter for exact waits.
	// Outside [0, 1] is an error.
	RandomizationFactor float64

	// NoJitter makes every wait exactly its interval. False (the zero
	// value) means jitter as RandomizationFactor says. Setting it with a
	// non-zero RandomizationFactor is an error.
	NoJitter bool

	// MaxInterval caps the interval before jitter. Zero means 60s.
	// Negative, or below InitialInterval, is an error. math.MaxInt64
	// means no cap (intervals saturate as InitialInterval says).
	MaxInterval time.Duration

	// NoWait retries at once, with no backoff wait between attempts
	// (a wait asked for by the error, such as a Retry-After, still
	// applies). It is meant for tests and benchmarks of code that uses
	// retry. False (the zero value) means exponential backoff. Setting it
	// with InitialInterval, Multiplier, MaxInterval, RandomizationFactor or
	// NoJitter is an error, since they would have no effect.
	NoWait bool

	// MaxElapsedTime bounds the time retry spends on one call, counted
	// from the start of the first attempt: a wait that would end later
	// than that is not begun, and Do gives up at once with
	// ErrMaxElapsedTime. An attempt already running is not interrupted
	// (bound an attempt with a context deadline, or with the breaker's
	// request timeout). Zero means no limit beyond MaxAttempts; a non-zero
	// value costs one clock read per call. Negative is an error.
	MaxElapsedTime time.Duration

	// MaxRetryAfter is the longest wait an error may ask for with a
	// Retry-After (see [After] and [FromResponse]). A longer request makes
	// Do give up at once with ErrRetryAfterTooLong rather than sleep.
	// Zero means 5m. Negative is an error.
	MaxRetryAfter time.Duration

	// Budget, if set, caps the retries of the Retrier across all its
	// calls at a ratio of the calls it started recently plus a small floor
	// per second (see [Budget]); a failed attempt the budget cannot pay
	// for is not retried, and Do gives up with ErrBudgetExhausted. Each
	// Retrier made by New keeps its own budget. Nil means no budget: every
	// call may make MaxAttempts attempts. A Budget costs one atomic add
	// per call.
	Budget *Budget

	// IsRetryable reports whether an attempt's error is worth another
	// attempt. It is not asked about the errors retry never retries
	// (Permanent ones, those wrapping bulwark.ErrRejected, and any error
	// once the caller's context is done). Nil means [DefaultIsRetryable]:
	// every other error is retryable except the service's final answer
	// (wrapping bulwark.ErrFinal). It is called on the caller's goroutine and must be safe
	// for concurrent use if the Retrier is shared.
	IsRetryable func(err error) bool

	// OnEvent receives a retry:attempt event before each wait (Attempt is
	// the number of the attempt that failed, Err its error, Duration the
	// wait) and a retry:exhausted event when Do gives up with an [*Error]
	// (Attempt is the number of attempts made, Err the returned error).
	// Executor is left empty. It is called synchronously on the caller's
	// goroutine and must be safe for concurrent use if the Retrier is
	// shared. Nil means no events, and then none is built.
	OnEvent bulwark.Listener
}

// policy is a Config with its defaults applied.
type policy struct {
	maxAttempts     int
	initialInterval time.Duration
	multiplier      float64
	randomization   float64
	maxInterval     time.Duration
	noWait          bool
	maxRetryAfter   time.Duration
}

// resolve applies the defaults. It is cheap and allocation-free, so a
// Retrier stores the Config as given (which keeps the zero Retrier usable)
// and resolves it on the retry path only.
func (c *Config) resolve() policy {
	p := policy{
		maxAttempts:     c.MaxAttempts,
		initialInterval: c.InitialInterval,
		multiplier:      c.Multiplier,
		randomization:   c.RandomizationFactor,
		maxInterval:     c.MaxInterval,
		noWait:          c.NoWait,
		maxRetryAfter:   c.MaxRetryAfter,
	}
	if p.maxAttempts == 0 {
		p.maxAttempts = DefaultMaxAttempts
	}
	if p.initialInterval == 0 {
		p.initialInterval = DefaultInitialInterval
	}
	if p.multiplier == 0 {
		p.multiplier = DefaultMultiplier
	}
	if p.randomization == 0 && !c.NoJitter {
		p.randomization = DefaultRandomizationFactor
	}
	if p.maxInterval == 0 {
		p.maxInterval = DefaultMaxInterval
	}
	if p.maxRetryAfter == 0 {
		p.maxRetryAfter = DefaultMaxRetryAfter
	}
	return p
}

// validate returns an error for every invalid field, each wrapping
// ErrInvalidConfig and naming the field.
func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.MaxAttempts < 0 {
		bad("MaxAttempts", "is %d, must not be negative (0 means %d)", c.MaxAttempts, DefaultMaxAttempts)
	}
	if c.InitialInterval < 0 {
		bad("InitialInterval", "is %v, must not be negative (0 means %v)", c.InitialInterval, DefaultInitialInterval)
	}
	if c.Multiplier != 0 && (!(c.Multiplier >= 1) || math.IsInf(c.Multiplier, 1)) {
		bad("Multiplier", "is %v, must be at least 1 and finite (0 means %v)", c.Multiplier, DefaultMultiplier)
	}
	if !(c.RandomizationFactor >= 0 && c.RandomizationFactor <= 1) {
		bad("RandomizationFactor", "is %v, must be within [0, 1] (0 means %v)", c.RandomizationFactor, DefaultRandomizationFactor)
	}
	if c.NoJitter && c.RandomizationFactor != 0 {
		bad("NoJitter", "is set together with RandomizationFactor %v; set one of them", c.RandomizationFactor)
	}
	if c.MaxInterval < 0 {
		bad("MaxInterval", "is %v, must not be negative (0 means %v)", c.MaxInterval, DefaultMaxInterval)
	}
	if c.MaxElapsedTime < 0 {
		bad("MaxElapsedTime", "is %v, must not be negative (0 means no limit)", c.MaxElapsedTime)
	}
	if c.MaxRetryAfter < 0 {
		bad("MaxRetryAfter", "is %v, must not be negative (0 means %v)", c.MaxRetryAfter, DefaultMaxRetryAfter)
	}
	if c.Budget != nil {
		c.Budget.validate(bad)
	}
	if c.NoWait {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"InitialInterval", c.InitialInterval != 0},
			{"Multiplier", c.Multiplier != 0},
			{"RandomizationFactor", c.RandomizationFactor != 0},
			{"NoJitter", c.NoJitter},
			{"MaxInterval", c.MaxInterval != 0},
		} {
			if f.set {
				bad(f.name, "is set together with NoWait, which ignores it")
			}
		}
	} else if c.InitialInterval > 0 && c.MaxInterval >= 0 {
		p := c.resolve()
		if p.initialInterval > p.maxInterval {
			if c.MaxInterval == 0 {
				bad("MaxInterval", "is 0, meaning %v, below InitialInterval %v; set MaxInterval", DefaultMaxInterval, p.initialInterval)
			} else {
				bad("MaxInterval", "is %v, below InitialInterval %v", p.maxInterval, p.initialInterval)
			}
		}
	}
	return errors.Join(errs...)
}
