package breaker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// Issue 14, item 4: Reset must leave a breaker exactly as a freshly made
// one. The failing inputs of the deterministic tests below, then a model
// test: drive a breaker to an arbitrary state (pending calls included),
// Reset it, make a fresh breaker at the same instant, feed both the same
// sequence and compare every decision.

// A Reset in CLOSED ratio mode left the window's failures in place.
func TestResetEmptiesTheRatioWindowInClosed(t *testing.T) {
	b := newBreakerT(t, Config{FailureRatio: 1, MinimumThroughput: 3})
	fail(b)
	fail(b)
	b.Reset()
	fail(b)
	assert.Equal(t, Closed, b.State(), "one failure in a fresh window is below MinimumThroughput")
}

// A Reset left ConsecutiveSuccesses counting from the last failure.
func TestResetClearsConsecutiveCounts(t *testing.T) {
	b := newBreakerT(t, Config{})
	fail(b)
	ok(b)
	ok(b)
	b.Reset()
	st := b.Stats()
	assert.Zero(t, st.ConsecutiveSuccesses)
	assert.Zero(t, st.ConsecutiveFailures)
	assert.Equal(t, int64(2), st.Successes, "totals are kept")
}

// A Reset kept the ratio window's buckets aligned on the breaker's
// creation: a failure just before a bucket boundary slid out a bucket
// earlier than in a fresh breaker.
func TestResetAlignsTheWindowAsNew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{FailureRatio: 1, MinimumThroughput: 2, SamplingWindow: time.Second}
		a := newBreakerT(t, cfg)
		time.Sleep(50 * time.Millisecond)
		a.Reset()
		b := newBreakerT(t, cfg)
		for _, br := range []*Breaker{a, b} {
			fail(br)
		}
		time.Sleep(960 * time.Millisecond) // 1.01s since a's creation, 0.96s since the Reset
		for _, br := range []*Breaker{a, b} {
			fail(br)
		}
		assert.Equal(t, Open, b.State(), "both failures are inside the fresh breaker's window")
		assert.Equal(t, b.State(), a.State(), "the reset breaker decides as the fresh one")
	})
}

func TestResetEndsForceOpenCompletely(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				b := newBreakerT(t, m.cfg(Config{FailureThreshold: 2}, rec))
				fail(b)
				b.ForceOpen()
				b.Reset()
				st := b.Stats()
				assert.False(t, st.Forced)
				assert.True(t, st.NextAttempt.IsZero())
				assert.Equal(t, int64(math64Max), b.nextAttempt.Load(), "no reset timeout pending")
				fail(b)
				assert.Equal(t, Closed, b.State(), "the failure before ForceOpen is forgotten")
				fail(b)
				assert.Equal(t, Open, b.State())
				b.mu.Lock()
				assert.NotNil(t, b.timer, "an ordinary OPEN arms the reset timer")
				b.mu.Unlock()
				time.Sleep(30 * time.Second)
				synctest.Wait()
				require.NoError(t, ok(b), "an ordinary reset timeout applies again")
				openBreaker(t, b)
				b.Reset()
				b.mu.Lock()
				assert.Nil(t, b.timer, "Reset stops the reset timer")
				assert.False(t, b.due)
				b.mu.Unlock()
			})
		})
	}
}

const math64Max = 1<<63 - 1

// outcomeOf classifies what a call returned, for comparison.
func outcomeOf(ran bool, err error) string {
	switch {
	case errors.Is(err, ErrOpen):
		return "open"
	case errors.Is(err, ErrTooManyProbes):
		return "probes"
	case !ran:
		return "not run: " + err.Error()
	case err == nil:
		return "ok"
	}
	return "error"
}

// circuitLines are the circuit events of rec, with their Seq made relative
// to base.
func circuitLines(rec *recorder, base uint64) []string {
	var out []string
	for _, e := range rec.all() {
		if strings.HasPrefix(string(e.Kind), "circuit:") {
			out = append(out, string(e.Kind)+" "+e.From+"->"+e.To+" #"+itoa(e.Seq-base))
		}
	}
	return out
}

func itoa(n uint64) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

func TestResetIsAFreshBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rapid.Check(bubbleTB{t}, func(rt *rapid.T) {
			var cfg Config
			if rapid.Bool().Draw(rt, "ratio") {
				cfg.FailureRatio = rapid.SampledFrom([]float64{0.25, 0.5, 1}).Draw(rt, "FailureRatio")
				cfg.MinimumThroughput = rapid.IntRange(1, 4).Draw(rt, "MinimumThroughput")
				cfg.SamplingWindow = time.Duration(rapid.IntRange(1, 20).Draw(rt, "SamplingWindow/s")) * time.Second
			} else {
				cfg.FailureThreshold = rapid.IntRange(1, 4).Draw(rt, "FailureThreshold")
				cfg.FailureWindow = time.Duration(rapid.IntRange(1, 20).Draw(rt, "FailureWindow/s")) * time.Second
			}
			cfg.ResetTimeout = time.Duration(rapid.IntRange(1, 10).Draw(rt, "ResetTimeout/s")) * time.Second
			cfg.SuccessThreshold = rapid.IntRange(1, 3).Draw(rt, "SuccessThreshold")
			cfg.HalfOpenMaxCalls = rapid.IntRange(0, 2).Draw(rt, "HalfOpenMaxCalls")
			if !rapid.Bool().Draw(rt, "timed") {
				cfg.RequestTimeout = -1
			}
			listen := rapid.Bool().Draw(rt, "listener")
			recA, recB := &recorder{}, &recorder{}
			cfgA, cfgB := cfg, cfg
			if listen {
				cfgA.OnEvent, cfgB.OnEvent = recA.listen, recB.listen
			}
			a, err := New("svc", cfgA)
			if err != nil {
				rt.Fatal(err)
			}

			cancelled, cancel := context.WithCancel(context.Background())
			cancel()
			callOn := func(b *Breaker, ctx context.Context, result error) string {
				ran := false
				_, err := Do(ctx, b, func(ctx context.Context) (int, error) {
					ran = true
					if ctx.Err() != nil {
						return 0, ctx.Err()
					}
					return 0, result
				})
				return outcomeOf(ran, err)
			}
			advance := rapid.Map(rapid.IntRange(0, 12_000), func(ms int) time.Duration {
				return time.Duration(ms) * time.Millisecond
			})
			var pending []func(error) // Allow's dones held across the Reset

			// Drive a to an arbitrary state.
			rt.Repeat(map[string]func(*rapid.T){
				"ok":        func(rt *rapid.T) { callOn(a, context.Background(), nil) },
				"fail":      func(rt *rapid.T) { callOn(a, context.Background(), errBoom) },
				"fail2":     func(rt *rapid.T) { callOn(a, context.Background(), errBoom) },
				"cancelled": func(rt *rapid.T) { callOn(a, cancelled, nil) },
				"advance": func(rt *rapid.T) {
					time.Sleep(advance.Draw(rt, "advance"))
					synctest.Wait()
				},
				"forceOpen": func(rt *rapid.T) { a.ForceOpen() },
				"hold": func(rt *rapid.T) {
					if done, err := a.Allow(); err == nil {
						pending = append(pending, done)
					}
				},
				"": func(rt *rapid.T) {},
			})

			// Reset a; make b at the same instant.
			a.Reset()
			b, err := New("svc", cfgB)
			if err != nil {
				rt.Fatal(err)
			}
			base := a.Stats()
			seqBase := a.seq
			recA.reset()

			step := 0
			stale := false // a stale call finished: a's totals (and so ConsecutiveSuccesses) count it
			compare := func(rt *rapid.T, what, got, want string) {
				if got != want {
					rt.Fatalf("step %d (%s): reset breaker %q, fresh breaker %q", step, what, got, want)
				}
			}
			both := func(f func(*Breaker) string) (string, string) { return f(a), f(b) }
			rt.Repeat(map[string]func(*rapid.T){
				"ok": func(rt *rapid.T) {
					x, y := both(func(br *Breaker) string { return callOn(br, context.Background(), nil) })
					compare(rt, "ok", x, y)
				},
				"fail": func(rt *rapid.T) {
					x, y := both(func(br *Breaker) string { return callOn(br, context.Background(), errBoom) })
					compare(rt, "fail", x, y)
				},
				"fail2": func(rt *rapid.T) {
					x, y := both(func(br *Breaker) string { return callOn(br, context.Background(), errBoom) })
					compare(rt, "fail", x, y)
				},
				"cancelled": func(rt *rapid.T) {
					x, y := both(func(br *Breaker) string { return callOn(br, cancelled, nil) })
					compare(rt, "cancelled", x, y)
				},
				"allow": func(rt *rapid.T) {
					result := rapid.SampledFrom([]error{nil, errBoom}).Draw(rt, "result")
					x, y := both(func(br *Breaker) string {
						done, err := br.Allow()
						if err != nil {
							return outcomeOf(false, err)
						}
						done(result)
						return "ok"
					})
					compare(rt, "allow", x, y)
				},
				"advance": func(rt *rapid.T) {
					time.Sleep(advance.Draw(rt, "advance"))
					synctest.Wait()
				},
				"stale": func(rt *rapid.T) {
					// A call admitted before the Reset finishes now: it
					// must not move a's state.
					if len(pending) == 0 {
						rt.Skip("no call pending")
					}
					stale = true
					pending[0](rapid.SampledFrom([]error{nil, errBoom}).Draw(rt, "stale result"))
					pending = pending[1:]
				},
				"forceOpen": func(rt *rapid.T) { a.ForceOpen(); b.ForceOpen() },
				"reset": func(rt *rapid.T) {
					if rapid.IntRange(0, 3).Draw(rt, "rare") != 0 {
						rt.Skip("not this time")
					}
					a.Reset()
					b.Reset()
				},
				"": func(rt *rapid.T) {
					step++
					sa, sb := a.Stats(), b.Stats()
					compare(rt, "state", sa.State.String(), sb.State.String())
					compare(rt, "word state", a.State().String(), b.State().String())
					if sa.Forced != sb.Forced || !sa.NextAttempt.Equal(sb.NextAttempt) ||
						sa.ConsecutiveFailures != sb.ConsecutiveFailures ||
						sa.ConsecutiveSuccesses != sb.ConsecutiveSuccesses && !stale ||
						sa.TimesOpened-base.TimesOpened != sb.TimesOpened ||
						sa.TimesClosed-base.TimesClosed != sb.TimesClosed ||
						sa.Rejections-base.Rejections != sb.Rejections {
						rt.Fatalf("step %d: reset breaker %+v (at reset %+v), fresh breaker %+v", step, sa, base, sb)
					}
					a.mu.Lock()
					ca := a.c
					a.mu.Unlock()
					b.mu.Lock()
					cb := b.c
					b.mu.Unlock()
					if ca.probes != cb.probes || ca.probeSuccesses != cb.probeSuccesses || len(ca.run) != len(cb.run) {
						rt.Fatalf("step %d: core %+v, fresh %+v", step, ca, cb)
					}
					if listen {
						ga, gb := circuitLines(recA, seqBase), circuitLines(recB, 0)
						compare(rt, "events", strings.Join(ga, ", "), strings.Join(gb, ", "))
					}
				},
			})
			for _, done := range pending {
				done(nil)
			}
		})
	})
}
