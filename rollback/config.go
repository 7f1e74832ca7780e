package rollback

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/bulwark-go/bulwark"
)

// Defaults used for the zero values of [Config].
const (
	// DefaultAttempts is how many times a compensation is tried when
	// Config.Attempts is 0.
	DefaultAttempts = 3
	// DefaultInitialInterval is the wait after a compensation's first
	// failed attempt when Config.InitialInterval is 0.
	DefaultInitialInterval = 200 * time.Millisecond
	// DefaultTimeout bounds one compensation, its retries included, when
	// Config.Timeout is 0.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxCompensations is how many compensations a scope holds at
	// most when Config.MaxCompensations is 0.
	DefaultMaxCompensations = 100_000
	// DefaultLease is a journaled workflow's lease when Config.Lease is 0.
	DefaultLease = 30 * time.Second
)

// maxBackoffInterval is the largest first wait handed to backoff/v4, about
// 73 years: its jitter arithmetic converts float64 products back to
// Durations unchecked, and an interval near math.MaxInt64 would come back
// negative (no wait at all). Below 2^61 the jittered wait stays in range.
const maxBackoffInterval = time.Duration(1 << 61)

// ErrInvalid is wrapped by every error that reports a bad configuration
// value or argument: a negative Config field, a nil function, an empty
// step name. The message names the field, as in
// "rollback: invalid Config.Attempts: -1 (must be 0 or more)". Nothing
// runs when such an error is returned.
var ErrInvalid = errors.New("rollback: invalid")

// Config says how compensations run when a scope rolls back. The zero
// value is ready to use: every field documents what its zero value means.
//
// A Config is a plain value; it is copied when it is used, so changing it
// afterwards has no effect on scopes, middlewares or sagas built from it.
type Config struct {
	// Attempts is how many times a compensation is tried before it is
	// declared failed, the first try included. 0 means DefaultAttempts
	// (3); 1 means no retry. Negative is invalid. A compensation that
	// returns an error marked with [Permanent], or that panics, is not
	// retried.
	Attempts int

	// InitialInterval is the wait after a compensation's first failed
	// attempt. Later waits grow by 1.5× per attempt, randomized by ±50%
	// and capped at one minute (backoff/v4's ExponentialBackOff with its
	// default multiplier, jitter and cap). 0 means DefaultInitialInterval
	// (200ms). Negative is invalid. Values beyond 2^61ns (about 73 years),
	// up to math.MaxInt64, mean "as long as possible" and are treated as
	// that: the next attempt then waits until Timeout ends the
	// compensation.
	InitialInterval time.Duration

	// Timeout bounds each compensation: all its attempts and the waits
	// between them, measured from its first attempt. The compensation's
	// context is done when it expires, and no further attempt starts.
	// 0 means DefaultTimeout (30s); negative means no timeout. The
	// deadline saturates: math.MaxInt64 is as long as a time can hold.
	Timeout time.Duration

	// MaxCompensations bounds how many compensations one scope holds at
	// once, its own registrations and those handed over by nested scopes
	// that committed: [OnRollback] beyond it registers nothing and returns
	// [ErrTooManyCompensations], and a nested scope whose hand-over would
	// exceed it is rolled back at once (see [Scope.Commit]). A [Saga]'s
	// own step Undos are always accepted (there are at most as many as
	// its steps). It bounds a scope's memory, which is otherwise
	// proportional to its registrations until it ends, against a loop that
	// registers for ever. 0 means DefaultMaxCompensations (100000).
	// Negative is invalid; values above math.MaxInt32 are treated as
	// math.MaxInt32.
	MaxCompensations int

	// StopOnFailure stops a rollback at the first compensation that still
	// fails after its attempts; the compensations not run are listed in
	// [Error].Skipped. false (the default) runs every compensation,
	// whatever happens to the others.
	StopOnFailure bool

	// OnEvent receives a rollback:compensated event for every
	// compensation that succeeded and a rollback:failed event for every
	// one that failed (Step is the compensation's name, Duration the time
	// it took including retries, Attempt the attempts made, Err the last
	// error). It is called synchronously on the goroutine running the
	// rollback, never under a lock. nil (the default) means no events, and
	// then none are built.
	OnEvent bulwark.Listener

	// Journal, when set, makes the compensations registered through a
	// [Compensation] (Before and OnRollback), and the guards registered
	// through a [Guard], durable: each is written to
	// the journal, so that if the process dies before the workflow ends,
	// [Recover] in another process runs them. A workflow is a top-level
	// scope ([Do], [Begin], a [Saga], a [Middleware] call); nested scopes
	// write to their top-level scope's workflow. Closures registered with
	// the package-level [OnRollback] and Saga step Undos stay in memory
	// only. nil (the default) journals nothing. Setting it requires
	// Registry and Owner.
	Journal Journal

	// Registry holds the handlers of the durable compensations; a
	// [Compensation] whose name it does not know is refused by a journaled
	// scope (it could not be recovered). Required with Journal; ignored
	// without one.
	Registry *Registry

	// Owner names the process running the workflows (see [NewOwnerID]);
	// it should be the same for all of a process's workflows, so that
	// [KeepAlive] renews their leases in one batch, and unique among the
	// processes sharing the journal. Required with Journal; ignored
	// without one. [Recover] uses it as the recoverer's name, and makes
	// one up when it is empty.
	Owner string

	// Lease is how long a journaled workflow stays its owner's after the
	// owner's last journal write or renewal: once it has expired without
	// the workflow ending, the workflow counts as abandoned and a
	// recoverer may claim it. Keep it well above the longest step, or run
	// [KeepAlive]. A rollback renews it itself: before each journaled
	// compensation (a fenced write: an owner that lost the workflow stops
	// there, see [Error].Skipped) and every Lease/3 while a compensation
	// runs, so Timeout may exceed it: only an owner that stalls (a pause,
	// a partition from the journal) for a whole Lease loses the workflow.
	// 0 means DefaultLease (30s); negative is invalid.
	Lease time.Duration
}

// Validate reports whether c is usable: it returns nil, or an error
// wrapping [ErrInvalid] that names the first bad field. [Do], [Begin],
// [NewSaga] and the calls of a [Middleware] report the same error; a caller
// that builds a Middleware from a Config (such as the pipeline package)
// can call Validate first to fail at construction time.
func (c Config) Validate() error {
	if c.Attempts < 0 {
		return fmt.Errorf("%w Config.Attempts: %d (must be 0 or more)", ErrInvalid, c.Attempts)
	}
	if c.InitialInterval < 0 {
		return fmt.Errorf("%w Config.InitialInterval: %v (must be 0 or more)", ErrInvalid, c.InitialInterval)
	}
	if c.Lease < 0 {
		return fmt.Errorf("%w Config.Lease: %v (must be 0 or more)", ErrInvalid, c.Lease)
	}
	if c.Journal != nil && c.Registry == nil {
		return fmt.Errorf("%w Config.Registry: nil with a Journal", ErrInvalid)
	}
	if c.Journal != nil && c.Owner == "" {
		return fmt.Errorf("%w Config.Owner: empty with a Journal", ErrInvalid)
	}
	if c.MaxCompensations < 0 {
		return fmt.Errorf("%w Config.MaxCompensations: %d (must be 0 or more)", ErrInvalid, c.MaxCompensations)
	}
	return nil
}

// Option changes the Config that a call of [Do], a [Middleware], a scope
// from [Begin] or a [Saga] uses. Options apply in order, each to the result
// of the ones before, starting from the zero Config; a nil Option is
// skipped. The result is validated as [Config.Validate] does.
//
// bulwark configures each layer with one Config struct; Option exists so
// that the common case, the defaults, needs no argument at all:
// rollback.Do(ctx, fn). Use [WithConfig] to pass a Config, or write an
// Option as a function literal to change one field:
//
//	stop := func(c *rollback.Config) { c.StopOnFailure = true }
type Option func(*Config)

// WithConfig returns an Option that replaces the whole Config with cfg.
// Options after it can still change single fields.
func WithConfig(cfg Config) Option {
	return func(c *Config) { *c = cfg }
}

// Permanent marks err so that a compensation returning it is not retried:
// the rollback records it as that compensation's failure at once (as err
// itself when the mark is outermost, or as returned when the compensation
// wrapped the marked error further). Permanent(nil) is nil.
//
// Permanent is shorthand for backoff.Permanent from
// github.com/cenkalti/backoff/v4; an error marked either way is treated
// the same.
func Permanent(err error) error {
	return backoff.Permanent(err)
}

// settings is a validated Config with its defaults filled in.
type settings struct {
	attempts      int
	interval      time.Duration
	timeout       time.Duration // <= 0: none
	stopOnFailure bool
	maxEntries    int32 // next to stopOnFailure: a Scope stays in its size class
	onEvent       bulwark.Listener
	durable       *durableConfig // nil: no journal
}

// durableConfig is the journal part of a Config, kept apart so that a
// scope without a journal stays small.
type durableConfig struct {
	journal  Journal
	registry *Registry
	owner    string
	lease    time.Duration
}

// resolve applies opts to the zero Config, validates the result and fills
// in the defaults.
func resolve(opts []Option) (settings, error) {
	if len(opts) == 0 {
		return Config{}.settings() // c would escape through the calls below
	}
	var c Config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c.settings()
}

func (c Config) settings() (settings, error) {
	if err := c.Validate(); err != nil {
		return settings{}, err
	}
	s := settings{
		attempts:      c.Attempts,
		interval:      c.InitialInterval,
		timeout:       c.Timeout,
		stopOnFailure: c.StopOnFailure,
		maxEntries:    int32(min(c.MaxCompensations, math.MaxInt32)), // saturates
		onEvent:       c.OnEvent,
	}
	if c.Journal != nil {
		s.durable = &durableConfig{journal: c.Journal, registry: c.Registry, owner: c.Owner, lease: c.Lease}
		if s.durable.lease == 0 {
			s.durable.lease = DefaultLease
		}
	}
	if s.maxEntries == 0 {
		s.maxEntries = DefaultMaxCompensations
	}
	if s.attempts == 0 {
		s.attempts = DefaultAttempts
	}
	if s.interval == 0 {
		s.interval = DefaultInitialInterval
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	return s, nil
}
