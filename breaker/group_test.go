package breaker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
)

func TestGroupZeroValueUsesPackageDefaults(t *testing.T) {
	var g Group
	assert.Empty(t, g.Names())
	assert.Empty(t, g.Stats())
	b := g.Get("notion")
	assert.Same(t, b, g.Get("notion"), "one breaker per executor")
	assert.Equal(t, "notion", b.Name())
	for range 4 {
		fail(b)
	}
	assert.True(t, b.IsClosed())
	fail(b)
	assert.True(t, b.IsOpen(), "FailureThreshold defaults to 5")
}

func TestGroupDefaultsAndConfigureBeforeFirstUse(t *testing.T) {
	rec := &recorder{}
	g, err := NewGroup(Config{FailureThreshold: 2, OnEvent: rec.listen})
	require.NoError(t, err)
	slackEvents := &recorder{}
	require.NoError(t, g.Configure("slack", Config{FailureThreshold: 1, OnEvent: slackEvents.listen}))

	fail(g.Get("notion"))
	assert.True(t, g.Get("notion").IsClosed())
	fail(g.Get("notion"))
	assert.True(t, g.Get("notion").IsOpen())

	fail(g.Get("slack"))
	assert.True(t, g.Get("slack").IsOpen(), "the executor's own Config applies")

	for _, e := range rec.all() {
		assert.Equal(t, "notion", e.Executor)
	}
	assert.Equal(t, []string{"request:failure", "circuit:opened CLOSED->OPEN"}, slackEvents.lines(),
		"an executor configured with its own listener reports to it")
	assert.Equal(t, []string{"notion", "slack"}, g.Names())
}

func TestGroupConfigureAfterFirstUseKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group
		b := g.Get("payments")
		ok(b)
		fail(b)
		fail(b)
		require.NoError(t, g.Configure("payments", Config{FailureThreshold: 3, ResetTimeout: 10 * time.Second}))
		assert.Same(t, b, g.Get("payments"), "the breaker is kept")
		st := b.Stats()
		assert.Equal(t, int64(1), st.Successes, "statistics are kept")
		assert.Equal(t, int64(2), st.ConsecutiveFailures)
		fail(b)
		assert.True(t, b.IsOpen(), "the run so far counts towards the new threshold")
		assert.Equal(t, time.Now().Add(10*time.Second), b.Stats().NextAttempt)

		// While OPEN: the next attempt follows the new ResetTimeout.
		require.NoError(t, g.Configure("payments", Config{FailureThreshold: 3, ResetTimeout: time.Minute}))
		assert.Equal(t, time.Now().Add(time.Minute), b.Stats().NextAttempt)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		ran, _ := call(b, nil)
		assert.False(t, ran, "the old reset timeout no longer applies")
		time.Sleep(50 * time.Second)
		synctest.Wait()
		ran, _ = call(b, nil)
		assert.True(t, ran)

		// Switching to a mode that reads the clock takes effect at once.
		rec := &recorder{}
		require.NoError(t, g.Configure("payments", Config{OnEvent: rec.listen}))
		ok(b)
		assert.Equal(t, []string{"request:success", "circuit:closed HALF_OPEN->CLOSED"}, rec.lines())
	})
}

func TestGroupConfigureSwitchesModes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group
		b := g.Get("search")
		fail(b)
		require.NoError(t, g.Configure("search", Config{FailureRatio: 0.5, MinimumThroughput: 4, SamplingWindow: 10 * time.Second}))
		ok(b)
		ok(b)
		fail(b)
		assert.True(t, b.IsClosed(), "1 of 3 in the new window: the failure before the switch is not in it")
		fail(b)
		assert.True(t, b.IsOpen(), "2 of 4")

		// Back to the consecutive rule with the same window length kept
		// unused, and a disabled timeout: the fast path applies again.
		b.Reset()
		require.NoError(t, g.Configure("search", Config{FailureThreshold: 2, RequestTimeout: -1}))
		assert.Nil(t, b.win.Load())
		ok(b)
		fn := func(context.Context) (int, error) { return 1, nil }
		assert.Zero(t, testing.AllocsPerRun(100, func() { Do(context.Background(), b, fn) }))
		fail(b)
		fail(b)
		assert.True(t, b.IsOpen())
	})
}

func TestGroupConfigureErrors(t *testing.T) {
	var g Group
	err := g.Configure("notion", Config{SuccessThreshold: -1})
	var ce *ConfigError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, "notion", ce.Name)
	assert.Equal(t, "SuccessThreshold", ce.Field)
	assert.Empty(t, g.Names(), "nothing was created")

	_, err = NewGroup(Config{FailureRatio: 2})
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, "FailureRatio", ce.Field)
}

func TestGroupStatsAndSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := NewGroup(Config{FailureThreshold: 2, RequestTimeout: -1})
		require.NoError(t, err)
		notion, slack, pay := g.Get("notion"), g.Get("slack"), g.Get("payments")
		ok(notion)
		ok(notion)
		ok(notion)
		fail(notion)
		fail(slack)
		fail(slack)
		fail(slack) // rejected
		pay.ForceOpen()
		time.Sleep(5 * time.Second)

		stats := g.Stats()
		require.Len(t, stats, 3)
		assert.Equal(t, int64(4), stats["notion"].Total)
		assert.Equal(t, Open, stats["slack"].State)
		assert.Equal(t, int64(1), stats["slack"].Rejections)
		assert.True(t, stats["payments"].Forced)

		want := strings.Join([]string{
			"EXECUTOR  STATE   SUCCESS RATE  CALLS  FAILURES  REJECTIONS  OPENED  NEXT ATTEMPT",
			"notion    CLOSED  75.0%         4      1         0           0       -",
			"payments  OPEN    -             0      0         0           1       forced open",
			"slack     OPEN    0.0%          3      2         1           1       in 25s",
			"",
		}, "\n")
		assert.Equal(t, want, g.Summary())

		time.Sleep(25 * time.Second)
		assert.Contains(t, g.Summary(), "slack     OPEN    0.0%          3      2         1           1       due")
	})
}

func TestGroupConcurrentGet(t *testing.T) {
	var g Group
	var wg sync.WaitGroup
	got := make([]*Breaker, 16)
	for i := range got {
		wg.Go(func() {
			name := []string{"a", "b", "c", "d"}[i%4]
			got[i] = g.Get(name)
			Do(context.Background(), got[i], func(context.Context) (int, error) { return 0, nil })
		})
	}
	wg.Wait()
	for i := range got {
		assert.Same(t, got[i%4], got[i])
	}
	assert.Equal(t, []string{"a", "b", "c", "d"}, g.Names())
	var total int64
	for _, s := range g.Stats() {
		total += s.Total
	}
	assert.Equal(t, int64(16), total)
}

func TestGroupGetDoesNotAllocate(t *testing.T) {
	var g Group
	g.Get("notion")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { g.Get("notion") }))
}

var _ bulwark.Listener = (&recorder{}).listen
