package bulkhead

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bulwark-go/bulwark"
)

// DefaultMaxConcurrent is the number of slots of a bulkhead whose
// Config.MaxConcurrent is 0.
const DefaultMaxConcurrent = 10

// maxCount is the largest MaxConcurrent and MaxWaiting: both counts live
// in 32 bits of one atomic word.
const maxCount = math.MaxInt32

// ErrInvalid is wrapped by every error that reports invalid input: a bad
// Config field (from [New]), a nil context, function or bulkhead (from
// [Bulkhead.Acquire], [Do] and [Middleware]). Such a call changes no state.
var ErrInvalid = errors.New("bulkhead: invalid")

// Config configures a [Bulkhead]. The zero value is ready to use: 10
// slots and no wait queue, so the 11th concurrent call is refused at once.
// Negative values are errors reported by [New].
type Config struct {
	// MaxConcurrent is the number of calls that may be in flight at the
	// same time (the bulkhead's slots). Default 10 ([DefaultMaxConcurrent]);
	// at most math.MaxInt32.
	MaxConcurrent int

	// MaxWaiting is how many calls may wait, in FIFO order, for a slot
	// when all slots are taken. A call that finds every slot taken and
	// MaxWaiting calls already waiting is refused at once with [ErrFull].
	// Default 0: no queue, a full bulkhead refuses at once. At most
	// math.MaxInt32. The queue's memory is bounded by MaxWaiting.
	MaxWaiting int

	// MaxWait is the longest a call waits in the queue for a slot; a call
	// still waiting when it passes leaves the queue and is refused with
	// [ErrFull]. The caller's context bounds the wait too (see
	// [Bulkhead.Acquire]). Default 0: no bound of its own, a call waits
	// as long as its context allows; math.MaxInt64 means the same. Used
	// only when MaxWaiting > 0.
	MaxWait time.Duration

	// OnEvent, if set, receives a [bulwark.BulkheadRejected] event for
	// every refused call, on the refused caller's goroutine and never
	// under a lock. Its Err is the rejection and its Duration how long
	// the call waited (0 when refused at once). Nil: no events, and no
	// cost for them.
	OnEvent bulwark.Listener
}

// settings is a validated Config with the defaults filled in.
type settings struct {
	maxConcurrent uint64
	maxWaiting    uint64
	maxWait       time.Duration // 0: no bound of its own
	onEvent       bulwark.Listener
}

func newSettings(name string, cfg Config) (settings, error) {
	bad := func(field string, v any, why string) error {
		return fmt.Errorf("%w Config.%s: %v %s (bulkhead %q)", ErrInvalid, field, v, why, name)
	}
	switch {
	case cfg.MaxConcurrent < 0:
		return settings{}, bad("MaxConcurrent", cfg.MaxConcurrent, "is negative")
	case cfg.MaxConcurrent > maxCount:
		return settings{}, bad("MaxConcurrent", cfg.MaxConcurrent, "is more than math.MaxInt32")
	case cfg.MaxWaiting < 0:
		return settings{}, bad("MaxWaiting", cfg.MaxWaiting, "is negative")
	case cfg.MaxWaiting > maxCount:
		return settings{}, bad("MaxWaiting", cfg.MaxWaiting, "is more than math.MaxInt32")
	case cfg.MaxWait < 0:
		return settings{}, bad("MaxWait", cfg.MaxWait, "is negative (for no queue, set MaxWaiting to 0)")
	}
	s := settings{
		maxConcurrent: uint64(cfg.MaxConcurrent),
		maxWaiting:    uint64(cfg.MaxWaiting),
		maxWait:       cfg.MaxWait,
		onEvent:       cfg.OnEvent,
	}
	if s.maxConcurrent == 0 {
		s.maxConcurrent = DefaultMaxConcurrent
	}
	if s.maxWait == math.MaxInt64 {
		s.maxWait = 0
	}
	return s, nil
}
