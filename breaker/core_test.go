package breaker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func mustSettings(t *testing.T, cfg Config) *settings {
	t.Helper()
	s, err := newSettings(cfg)
	require.Nil(t, err)
	return s
}

// step is one call in a core script: at the given offset from t0, ask
// allow, and if admitted record the outcome at the same instant.
type step struct {
	at      time.Duration
	o       outcome
	wantErr error // the rejection expected from allow; nil: admitted
	want    State // the state after the step
}

func runScript(t *testing.T, s *settings, steps []step) {
	t.Helper()
	var c core
	for i, st := range steps {
		now := t0.Add(st.at)
		probe, _, err := c.allow(s, now)
		require.ErrorIs(t, err, st.wantErr, "step %d at %v", i, st.at)
		if err == nil {
			c.record(s, now, c.gen, probe, st.o, ratioCounts{})
		}
		require.Equal(t, st.want, c.state, "step %d at %v", i, st.at)
	}
}

func TestCoreScripts(t *testing.T) {
	sec := time.Second
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "outage timeline",
			steps: []step{
				{at: 10 * sec, o: failure, want: Closed},
				{at: 15 * sec, o: failure, want: Closed},
				{at: 20 * sec, o: failure, want: Closed},
				{at: 25 * sec, o: failure, want: Closed},
				{at: 30 * sec, o: failure, want: Open},
				{at: 35 * sec, wantErr: ErrOpen, want: Open},
				{at: 40 * sec, wantErr: ErrOpen, want: Open},
				{at: 45 * sec, wantErr: ErrOpen, want: Open},
				{at: 60*sec - 1, wantErr: ErrOpen, want: Open},
				{at: 60 * sec, o: success, want: HalfOpen},
				{at: 65 * sec, o: success, want: Closed},
			},
		},
		{
			name: "a failure older than the window no longer counts",
			steps: []step{
				{at: 0, o: failure, want: Closed},
				{at: 0, o: failure, want: Closed},
				{at: 0, o: failure, want: Closed},
				{at: 0, o: failure, want: Closed},
				{at: 61 * sec, o: failure, want: Closed},
				{at: 62 * sec, o: failure, want: Closed},
				{at: 63 * sec, o: failure, want: Closed},
				{at: 64 * sec, o: failure, want: Closed},
				// 61..65: five failures within a minute.
				{at: 65 * sec, o: failure, want: Open},
			},
		},
		{
			name: "failures exactly FailureWindow apart still count",
			steps: []step{
				{at: 0, o: failure, want: Closed},
				{at: 0, o: failure, want: Closed},
				{at: 0, o: failure, want: Closed},
				{at: 0, o: failure, want: Closed},
				{at: 60 * sec, o: failure, want: Open},
			},
		},
		{
			name: "a success in the middle resets the run",
			steps: []step{
				{at: 1 * sec, o: failure, want: Closed},
				{at: 2 * sec, o: failure, want: Closed},
				{at: 3 * sec, o: failure, want: Closed},
				{at: 4 * sec, o: failure, want: Closed},
				{at: 5 * sec, o: success, want: Closed},
				{at: 6 * sec, o: failure, want: Closed},
				{at: 7 * sec, o: failure, want: Closed},
				{at: 8 * sec, o: failure, want: Closed},
				{at: 9 * sec, o: failure, want: Closed},
				{at: 10 * sec, o: failure, want: Open},
			},
		},
		{
			name: "ignored calls neither break nor extend the run",
			steps: []step{
				{at: 1 * sec, o: failure, want: Closed},
				{at: 2 * sec, o: failure, want: Closed},
				{at: 3 * sec, o: ignored, want: Closed},
				{at: 4 * sec, o: failure, want: Closed},
				{at: 5 * sec, o: failure, want: Closed},
				{at: 6 * sec, o: ignored, want: Closed},
				{at: 7 * sec, o: failure, want: Open},
			},
		},
		{
			name: "a failed probe reopens with a fresh reset timeout",
			cfg:  Config{FailureThreshold: 1, ResetTimeout: 10 * sec},
			steps: []step{
				{at: 0, o: failure, want: Open},
				{at: 10 * sec, o: failure, want: Open},
				{at: 19 * sec, wantErr: ErrOpen, want: Open},
				{at: 20 * sec, o: success, want: HalfOpen},
				{at: 21 * sec, o: success, want: Closed},
			},
		},
		{
			name: "an ignored probe frees its slot and counts neither way",
			cfg:  Config{FailureThreshold: 1, ResetTimeout: 10 * sec, SuccessThreshold: 1},
			steps: []step{
				{at: 0, o: failure, want: Open},
				{at: 10 * sec, o: ignored, want: HalfOpen},
				{at: 11 * sec, o: ignored, want: HalfOpen},
				{at: 12 * sec, o: success, want: Closed},
			},
		},
		{
			name: "threshold 1 and success threshold 3",
			cfg:  Config{FailureThreshold: 1, SuccessThreshold: 3, ResetTimeout: sec},
			steps: []step{
				{at: 0, o: success, want: Closed},
				{at: 1, o: failure, want: Open},
				{at: sec + 1, o: success, want: HalfOpen},
				{at: sec + 2, o: success, want: HalfOpen},
				{at: sec + 3, o: success, want: Closed},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runScript(t, mustSettings(t, tt.cfg), tt.steps)
		})
	}
}

func TestCoreHalfOpenProbeLimit(t *testing.T) {
	s := mustSettings(t, Config{FailureThreshold: 1, SuccessThreshold: 3, HalfOpenMaxCalls: 2})
	var c core
	c.allow(s, t0)
	c.record(s, t0, c.gen, false, failure, ratioCounts{})
	require.Equal(t, Open, c.state)

	now := t0.Add(s.resetTimeout)
	p1, tr, err := c.allow(s, now)
	require.NoError(t, err)
	assert.True(t, p1)
	assert.Equal(t, transition{Open, HalfOpen}, tr)
	gen := c.gen
	p2, tr, err := c.allow(s, now)
	require.NoError(t, err)
	assert.True(t, p2)
	assert.False(t, tr.changed())
	_, _, err = c.allow(s, now)
	require.ErrorIs(t, err, ErrTooManyProbes)

	// A finished probe frees its slot.
	c.record(s, now, gen, true, success, ratioCounts{})
	_, _, err = c.allow(s, now)
	require.NoError(t, err)
	_, _, err = c.allow(s, now)
	require.ErrorIs(t, err, ErrTooManyProbes)
	assert.Equal(t, 2, c.probes)
	assert.Equal(t, 1, c.probeSuccesses)
}

func TestCoreStaleGenerationIgnored(t *testing.T) {
	s := mustSettings(t, Config{FailureThreshold: 2})
	var c core
	c.allow(s, t0)
	old := c.gen
	c.record(s, t0, old, false, failure, ratioCounts{})
	c.record(s, t0, old, false, failure, ratioCounts{})
	require.Equal(t, Open, c.state)

	// Late results of calls admitted while CLOSED change nothing.
	for _, o := range []outcome{success, failure, ignored} {
		tr := c.record(s, t0, old, false, o, ratioCounts{})
		assert.False(t, tr.changed())
		assert.Equal(t, Open, c.state)
	}

	// A probe admitted in one HALF_OPEN period cannot close the next one.
	now := t0.Add(s.resetTimeout)
	_, _, err := c.allow(s, now)
	require.NoError(t, err)
	probeGen := c.gen
	c.record(s, now, probeGen, true, failure, ratioCounts{}) // reopens
	require.Equal(t, Open, c.state)
	now = now.Add(s.resetTimeout)
	_, _, err = c.allow(s, now)
	require.NoError(t, err)
	require.Equal(t, HalfOpen, c.state)
	c.record(s, now, probeGen, true, success, ratioCounts{})
	c.record(s, now, probeGen, true, success, ratioCounts{})
	assert.Equal(t, HalfOpen, c.state)
	assert.Equal(t, 1, c.probes, "the stale results did not free the current probe's slot")
}

func TestCoreRatioDecision(t *testing.T) {
	s := mustSettings(t, Config{FailureRatio: 0.5, MinimumThroughput: 10})
	tests := []struct {
		rc   ratioCounts
		want State
	}{
		{ratioCounts{failures: 9, total: 9}, Closed},    // below the minimum throughput
		{ratioCounts{failures: 4, total: 10}, Closed},   // below the ratio
		{ratioCounts{failures: 5, total: 10}, Open},     // at the ratio
		{ratioCounts{failures: 60, total: 100}, Open},   // above
		{ratioCounts{failures: 49, total: 100}, Closed}, // just below
	}
	for _, tt := range tests {
		var c core
		c.record(s, t0, 0, false, failure, tt.rc)
		assert.Equal(t, tt.want, c.state, "%+v", tt.rc)
	}
}

func TestCoreResetAndForceOpen(t *testing.T) {
	s := mustSettings(t, Config{})
	var c core
	tr := c.forceOpen(s, t0)
	assert.Equal(t, transition{Closed, Open}, tr)
	assert.True(t, c.forced)
	// Forced: the reset timeout does not apply.
	_, _, err := c.allow(s, t0.Add(time.Hour))
	require.ErrorIs(t, err, ErrOpen)

	tr = c.reset(s, t0.Add(time.Hour))
	assert.Equal(t, transition{Open, Closed}, tr)
	assert.False(t, c.forced)
	_, _, err = c.allow(s, t0.Add(time.Hour))
	require.NoError(t, err)

	// Reset while CLOSED clears the run and starts a new generation.
	c.record(s, t0, c.gen, false, failure, ratioCounts{})
	gen := c.gen
	tr = c.reset(s, t0)
	assert.False(t, tr.changed())
	assert.Empty(t, c.run)
	assert.Zero(t, c.consecutive)
	assert.Greater(t, c.gen, gen)

	// ForceOpen while OPEN holds it open without a new transition.
	c.record(s, t0, c.gen, false, failure, ratioCounts{})
	for range 4 {
		c.record(s, t0, c.gen, false, failure, ratioCounts{})
	}
	require.Equal(t, Open, c.state)
	tr = c.forceOpen(s, t0)
	assert.False(t, tr.changed())
	assert.True(t, c.forced)
	assert.True(t, c.nextAttempt.IsZero())
}

func TestCoreReconfigureKeepsNewestFailures(t *testing.T) {
	s := mustSettings(t, Config{FailureThreshold: 5})
	var c core
	for i := range 4 {
		c.record(s, t0.Add(time.Duration(i)*time.Second), c.gen, false, failure, ratioCounts{})
	}
	lower := mustSettings(t, Config{FailureThreshold: 3})
	c.reconfigure(lower, t0)
	require.Len(t, c.run, 3)
	assert.Equal(t, t0.Add(time.Second), c.run[0], "the newest failures are kept, oldest first")
	assert.Equal(t, Closed, c.state, "a lower threshold trips on the next failure, not at once")
	c.record(lower, t0.Add(4*time.Second), c.gen, false, failure, ratioCounts{})
	assert.Equal(t, Open, c.state)

	// OPEN: the next attempt follows the new reset timeout from the opening.
	longer := mustSettings(t, Config{FailureThreshold: 3, ResetTimeout: time.Minute})
	c.reconfigure(longer, t0.Add(10*time.Second))
	assert.Equal(t, t0.Add(4*time.Second+time.Minute), c.nextAttempt)
}
