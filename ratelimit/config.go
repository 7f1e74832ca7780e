package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bulwark-go/bulwark"
)

// ErrInvalid is wrapped by every error that reports invalid input: a bad
// Config field (from [New]) or argument (from [NewTokenBucket]), a nil
// context, function or limiter (from [Limiter.Wait], [Do] and
// [Middleware]). Such a call changes no state.
var ErrInvalid = errors.New("ratelimit: invalid")

// Config configures a [Limiter]. Rate (or Backend) is required: there is
// no rate that suits every service. Every other zero field means the
// default given in its comment.
type Config struct {
	// Rate is the sustained number of calls per second the limiter lets
	// through: a token bucket gains Rate tokens per second and each call
	// takes one. Fractions are fine (0.5 is one call every two seconds);
	// math.Inf(1) means no limit. Required, unless Backend is set, in
	// which case it must be 0.
	Rate float64

	// Burst is the size of the token bucket: how many calls may go at
	// once after a quiet period. Default 1: calls are spaced exactly
	// 1/Rate apart. Must be 0 when Backend is set.
	Burst int

	// MaxWait is the longest a call waits for its token (and for a pause
	// to end, see [Limiter.PauseFor]). The caller's context bounds the
	// wait too: a call whose token would come after MaxWait or after its
	// context's deadline is refused at once, without waiting. Default 0:
	// no bound of its own, a call waits as long as its context allows
	// (math.MaxInt64 means the same). A negative MaxWait means calls never
	// wait: a call goes if a token is there and is refused otherwise.
	MaxWait time.Duration

	// Backend, if set, is where the limiter gets its tokens instead of a
	// local token bucket built from Rate and Burst: for example a limit
	// shared by many processes (ratelimit/redislimit). Default nil: the
	// local [TokenBucket].
	Backend Backend

	// OnEvent, if set, receives a [bulwark.RateLimitRejected] event for
	// every refused call (Duration: the wait the call would have needed)
	// and a [bulwark.RateLimitPaused] event for every pause (Duration:
	// the pause), on the goroutine of the call that caused it and never
	// under a lock. Nil: no events, and no cost for them.
	OnEvent bulwark.Listener
}

// settings is a validated Config.
type settings struct {
	backend Backend
	local   *TokenBucket // the backend, when it is the local bucket
	// unlimited: the backend is a local bucket of rate +Inf, which only
	// a pause can make a call wait for.
	unlimited bool
	maxWait   time.Duration // < 0: never wait; 0: no bound of its own
	onEvent   bulwark.Listener
}

func newSettings(name string, cfg Config) (settings, error) {
	s := settings{backend: cfg.Backend, maxWait: cfg.MaxWait, onEvent: cfg.OnEvent}
	if s.maxWait == math.MaxInt64 {
		s.maxWait = 0
	}
	if cfg.Backend != nil {
		switch {
		case cfg.Rate != 0:
			return s, fmt.Errorf("%w Config.Rate: %v set together with Backend, which has its own rate (ratelimit %q)", ErrInvalid, cfg.Rate, name)
		case cfg.Burst != 0:
			return s, fmt.Errorf("%w Config.Burst: %d set together with Backend, which has its own burst (ratelimit %q)", ErrInvalid, cfg.Burst, name)
		}
		s.local, _ = cfg.Backend.(*TokenBucket)
		s.unlimited = s.local != nil && math.IsInf(s.local.Rate(), 1)
		return s, nil
	}
	if cfg.Rate == 0 {
		return s, fmt.Errorf("%w Config.Rate: required (calls per second; math.Inf(1) for no limit) (ratelimit %q)", ErrInvalid, name)
	}
	tb, err := NewTokenBucket(cfg.Rate, cfg.Burst)
	if err != nil {
		return s, fmt.Errorf("%w (ratelimit %q)", withConfigPrefix(err), name)
	}
	s.backend, s.local = tb, tb
	s.unlimited = math.IsInf(cfg.Rate, 1)
	return s, nil
}

// withConfigPrefix turns NewTokenBucket's "ratelimit: invalid Rate: ..."
// into "ratelimit: invalid Config.Rate: ...".
func withConfigPrefix(err error) error {
	msg := err.Error()[len(ErrInvalid.Error())+1:]
	return fmt.Errorf("%w Config.%s", ErrInvalid, msg)
}
