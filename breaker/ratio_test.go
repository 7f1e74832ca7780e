package breaker

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
