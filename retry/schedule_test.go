package retry_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"

	"github.com/bulwark-go/bulwark/retry"
)

// The waits follow backoff/v4's schedule for any valid Config: interval i
// starts at InitialInterval and becomes min(i·Multiplier, MaxInterval)
// after each wait; each wait is drawn from [i·(1−f), i·(1+f)+1ns).
func TestWaitScheduleProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		initial := time.Duration(rapid.Int64Range(1, int64(10*time.Second)).Draw(rt, "initial"))
		maxInterval := initial + time.Duration(rapid.Int64Range(0, int64(time.Minute)).Draw(rt, "extra"))
		multiplier := rapid.Float64Range(1, 4).Draw(rt, "multiplier")
		jitter := rapid.Bool().Draw(rt, "jitter")
		cfg := retry.Config{
			MaxAttempts:     rapid.IntRange(1, 8).Draw(rt, "attempts"),
			InitialInterval: initial,
			MaxInterval:     maxInterval,
			Multiplier:      multiplier,
		}
		factor := 0.0
		if jitter {
			factor = rapid.Float64Range(0.01, 1).Draw(rt, "factor")
			cfg.RandomizationFactor = factor
		} else {
			cfg.NoJitter = true
		}
		r, err := retry.New(cfg)
		if err != nil {
			rt.Fatalf("New(%+v): %v", cfg, err)
		}

		// Run the call in a bubble (virtual time), check outside it so
		// that rapid sees the failures and shrinks them.
		s := always(errBoom)
		synctest.Test(t, func(*testing.T) {
			_, err = retry.Do(context.Background(), r, s.fn)
		})
		if len(s.starts) != cfg.MaxAttempts {
			rt.Fatalf("%d attempts, want %d (err %v)", len(s.starts), cfg.MaxAttempts, err)
		}

		interval := initial
		for k, got := range s.waits() {
			if !jitter {
				if got != interval {
					rt.Fatalf("wait %d = %v, want %v", k+1, got, interval)
				}
			} else {
				delta := factor * float64(interval)
				lo := time.Duration(float64(interval) - delta)
				hi := time.Duration(float64(interval)+delta) + 1
				if got < lo-1 || got > hi {
					rt.Fatalf("wait %d = %v, outside [%v, %v]", k+1, got, lo, hi)
				}
			}
			if float64(interval) >= float64(maxInterval)/multiplier {
				interval = maxInterval
			} else {
				interval = time.Duration(float64(interval) * multiplier)
			}
		}
	})
}
