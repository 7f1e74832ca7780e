package breaker

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWindowCountsAndSlides(t *testing.T) {
	w := newWindow(t0, 10*time.Second) // buckets of 1s
	w.add(t0, false)
	w.add(t0.Add(500*time.Millisecond), true)
	w.add(t0.Add(3*time.Second), true)
	s, f := w.counts(t0.Add(3 * time.Second))
	assert.Equal(t, 1, s)
	assert.Equal(t, 2, f)

	// At 9.9s the window still holds slot 0.
	s, f = w.counts(t0.Add(9900 * time.Millisecond))
	assert.Equal(t, 1, s)
	assert.Equal(t, 2, f)

	// At 10s slot 0 has slid out; slot 3 is still in.
	s, f = w.counts(t0.Add(10 * time.Second))
	assert.Equal(t, 0, s)
	assert.Equal(t, 1, f)

	// At 13s everything has slid out.
	s, f = w.counts(t0.Add(13 * time.Second))
	assert.Zero(t, s+f)
}

func TestWindowReusesBucketsForNewSlots(t *testing.T) {
	w := newWindow(t0, 10*time.Second)
	w.add(t0.Add(2*time.Second), true)
	w.add(t0.Add(2*time.Second), true)
	// Slot 12 shares the bucket of slot 2; the old count must not leak in.
	w.add(t0.Add(12*time.Second), true)
	_, f := w.counts(t0.Add(12 * time.Second))
	assert.Equal(t, 1, f)
}

func TestWindowDropsAddsAWholeWindowLate(t *testing.T) {
	w := newWindow(t0, 10*time.Second)
	w.add(t0.Add(12*time.Second), false)
	w.add(t0.Add(2*time.Second), false) // same bucket, older slot
	s, _ := w.counts(t0.Add(12 * time.Second))
	assert.Equal(t, 1, s)
}

func TestWindowReset(t *testing.T) {
	w := newWindow(t0, 10*time.Second)
	for i := range 5 {
		w.add(t0.Add(time.Duration(i)*time.Second), i%2 == 0)
	}
	w.reset()
	s, f := w.counts(t0.Add(5 * time.Second))
	assert.Zero(t, s+f)
	w.add(t0, true) // slot 0 counts again after a reset
	_, f = w.counts(t0)
	assert.Equal(t, 1, f)
}

func TestWindowSaturates(t *testing.T) {
	w := newWindow(t0, 10*time.Second)
	w.buckets[0].successes.Store(countMask - 1)
	w.add(t0, false)
	w.add(t0, false)
	s, _ := w.counts(t0)
	assert.Equal(t, countMask, s, "a full bucket stays full instead of overflowing into the epoch")
}

func TestWindowBeforeBase(t *testing.T) {
	w := newWindow(t0, 10*time.Second)
	w.add(t0.Add(-time.Second), true)
	_, f := w.counts(t0)
	assert.Equal(t, 1, f, "a time before the base counts in slot 0")
}

func TestWindowConcurrentAdds(t *testing.T) {
	w := newWindow(t0, 10*time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				w.add(t0.Add(time.Duration(i%10)*time.Second), g%2 == 0)
			}
		})
	}
	wg.Wait()
	s, f := w.counts(t0.Add(9 * time.Second))
	assert.Equal(t, 4000, s)
	assert.Equal(t, 4000, f)
}

// Ratio mode through the breaker.

func TestRatioModeNeedsMinimumThroughput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureRatio: 0.5, MinimumThroughput: 10, SamplingWindow: 10 * time.Second})
		for range 9 {
			fail(b)
		}
		assert.Equal(t, Closed, b.State(), "9 failures of 9 calls: below the minimum throughput")
		ok(b)
		assert.Equal(t, Closed, b.State(), "a success does not open the circuit")
		fail(b)
		assert.Equal(t, Open, b.State(), "10 failures of 11 calls")
	})
}

func TestRatioModeOpensAtTheRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureRatio: 0.5, MinimumThroughput: 4, SamplingWindow: 10 * time.Second})
		for range 6 {
			ok(b)
		}
		for range 5 {
			fail(b)
		}
		assert.Equal(t, Closed, b.State(), "5 of 11")
		fail(b)
		assert.Equal(t, Open, b.State(), "6 of 12")
	})
}

func TestRatioModeOldBucketsSlideOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureRatio: 0.5, MinimumThroughput: 4, SamplingWindow: 10 * time.Second})
		c := newClock()
		for range 3 {
			fail(b)
		}
		// 0:05: three successes; 3 of 6 would open on the next failure.
		c.at(5 * time.Second)
		for range 3 {
			ok(b)
		}
		// 0:10: the first failures (slot 0) slid out; the window holds the
		// three successes only, so one failure is 1 of 4.
		c.at(10 * time.Second)
		fail(b)
		assert.Equal(t, Closed, b.State())
		// 0:11: 2 of 5 — still below the ratio.
		c.at(11 * time.Second)
		fail(b)
		assert.Equal(t, Closed, b.State())
		// 0:12: 3 of 6: opens.
		c.at(12 * time.Second)
		fail(b)
		assert.Equal(t, Open, b.State())
	})
}

func TestRatioModeWindowRestartsWhenClosing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakerT(t, Config{FailureRatio: 0.5, MinimumThroughput: 2, SamplingWindow: 10 * time.Minute, SuccessThreshold: 1})
		fail(b)
		fail(b)
		require.Equal(t, Open, b.State())
		time.Sleep(30 * time.Second)
		synctest.Wait()
		ok(b)
		require.Equal(t, Closed, b.State())
		fail(b)
		assert.Equal(t, Closed, b.State(), "1 of 1 after closing: the old failures are forgotten")
		fail(b)
		assert.Equal(t, Open, b.State())
	})
}
