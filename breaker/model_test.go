package breaker

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"

	"github.com/bulwark-go/bulwark"
)

// refModel is a deliberately naive reference for the breaker's decisions
// in consecutive mode, written from the documentation rather than from the
// implementation: it keeps every failure time of the current run in a
// slice and trims it by the window.
type refModel struct {
	threshold, successThreshold int
	window, reset               time.Duration
	closedFast                  bool // no request timeout, no listener: CLOSED calls take the allocation-free path
	openFast                    bool // no listener: OPEN rejections take the allocation-free path

	state         State
	forced        bool
	fails         []time.Duration // the current run, oldest first
	openedAt      time.Duration
	halfSuccesses int

	successes, failures, ignored, rejections, opened int64
}

// call runs one sequential call at now with the outcome o and reports
// whether it ran. A call with the outcome ignored is made with a context
// that is already done: only the fast path's CLOSED call runs it; an OPEN
// circuit rejects it on the fast path before its reset timeout; every
// other path returns the context's error without running it.
func (m *refModel) call(now time.Duration, o outcome) bool {
	if o == ignored && !(m.closedFast && m.state == Closed) {
		if m.openFast && m.state == Open && (m.forced || now < m.openedAt+m.reset) {
			m.rejections++
		} else {
			m.ignored++
		}
		return false
	}
	if m.state == Open {
		if m.forced || now < m.openedAt+m.reset {
			m.rejections++
			return false
		}
		m.state, m.halfSuccesses = HalfOpen, 0
	}
	switch o {
	case success:
		m.successes++
		m.fails = nil
		if m.state == HalfOpen {
			m.halfSuccesses++
			if m.halfSuccesses >= m.successThreshold {
				m.state = Closed
			}
		}
	case failure:
		m.failures++
		if m.state == HalfOpen {
			m.open(now)
			break
		}
		m.fails = append(m.fails, now)
		for now-m.fails[0] > m.window {
			m.fails = m.fails[1:]
		}
		if len(m.fails) >= m.threshold {
			m.open(now)
		}
	case ignored:
		m.ignored++
	}
	return true
}

func (m *refModel) open(now time.Duration) {
	m.state, m.openedAt, m.fails, m.forced = Open, now, nil, false
	m.opened++
}

// bubbleTB hides the *testing.T of a synctest bubble from rapid, which
// would call its Deadline (not allowed inside a bubble).
type bubbleTB struct{ *testing.T }

// TestModel drives the breaker and refModel with random sequences of
// successes, failures, cancelled calls, clock advances, Reset and ForceOpen,
// in both modes, and checks after every step that they agree on whether
// each call ran, on the state and on the counters.
func TestModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rapid.Check(bubbleTB{t}, func(rt *rapid.T) {
			cfg := Config{
				FailureThreshold: rapid.IntRange(1, 4).Draw(rt, "FailureThreshold"),
				FailureWindow:    time.Duration(rapid.IntRange(1, 60).Draw(rt, "FailureWindow/s")) * time.Second,
				ResetTimeout:     time.Duration(rapid.IntRange(1, 30).Draw(rt, "ResetTimeout/s")) * time.Second,
				SuccessThreshold: rapid.IntRange(1, 3).Draw(rt, "SuccessThreshold"),
			}
			switch rapid.SampledFrom([]string{"fast", "timeout", "listener"}).Draw(rt, "mode") {
			case "fast": // no clock on the hot paths
				cfg.RequestTimeout = -1
			case "listener": // every call reads the clock
				cfg.OnEvent = func(bulwark.Event) {}
			}
			b, err := New("model", cfg)
			if err != nil {
				rt.Fatal(err)
			}
			m := &refModel{
				threshold: cfg.FailureThreshold, successThreshold: cfg.SuccessThreshold,
				window: cfg.FailureWindow, reset: cfg.ResetTimeout,
				closedFast: cfg.RequestTimeout < 0 && cfg.OnEvent == nil,
				openFast:   cfg.OnEvent == nil,
			}
			start := time.Now()
			cancelled, cancel := context.WithCancel(context.Background())
			cancel()

			do := func(rt *rapid.T, o outcome) {
				ctx, result := context.Background(), error(nil)
				switch o {
				case failure:
					result = errBoom
				case ignored:
					ctx = cancelled
				}
				ran := false
				_, err := Do(ctx, b, func(ctx context.Context) (int, error) {
					ran = true
					if o == ignored {
						return 0, ctx.Err()
					}
					return 0, result
				})
				want := m.call(time.Since(start), o)
				if ran != want {
					rt.Fatalf("at %v: ran = %v, model says %v", time.Since(start), ran, want)
				}
				if !ran && !errors.Is(err, ErrOpen) && (o != ignored || !errors.Is(err, context.Canceled)) {
					rt.Fatalf("rejected with %v, want ErrOpen", err)
				}
			}
			advance := rapid.OneOf(
				rapid.SampledFrom([]time.Duration{0, time.Millisecond, cfg.FailureWindow, cfg.ResetTimeout,
					cfg.ResetTimeout - time.Millisecond, cfg.FailureWindow + time.Millisecond,
					cfg.FailureWindow / 2, cfg.FailureWindow - time.Millisecond}),
				rapid.Map(rapid.IntRange(0, 40_000), func(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }),
			)

			advanceBy := func(rt *rapid.T) {
				time.Sleep(advance.Draw(rt, "advance"))
				synctest.Wait() // let the reset timer run, as real time would
			}
			// rare makes operator actions less frequent than calls.
			rare := func(rt *rapid.T) {
				if rapid.IntRange(0, 4).Draw(rt, "rare") != 0 {
					rt.Skip("not this time")
				}
			}
			rt.Repeat(map[string]func(*rapid.T){
				"success":   func(rt *rapid.T) { do(rt, success) },
				"success2":  func(rt *rapid.T) { do(rt, success) },
				"failure":   func(rt *rapid.T) { do(rt, failure) },
				"failure2":  func(rt *rapid.T) { do(rt, failure) },
				"failure3":  func(rt *rapid.T) { do(rt, failure) },
				"cancelled": func(rt *rapid.T) { do(rt, ignored) },
				"advance":   advanceBy,
				"advance2":  advanceBy,
				"advance3":  advanceBy,
				"reset": func(rt *rapid.T) {
					rare(rt)
					b.Reset()
					m.state, m.fails, m.forced = Closed, nil, false
				},
				"forceOpen": func(rt *rapid.T) {
					rare(rt)
					b.ForceOpen()
					if m.state != Open {
						m.opened++
					}
					m.state, m.fails, m.forced = Open, nil, true
				},
				"": func(rt *rapid.T) {
					st := b.Stats()
					if st.State != m.state || b.State() != m.state {
						rt.Fatalf("state %v (word %v), model %v", st.State, b.State(), m.state)
					}
					got := [5]int64{st.Successes, st.Failures, st.Ignored, st.Rejections, st.TimesOpened}
					want := [5]int64{m.successes, m.failures, m.ignored, m.rejections, m.opened}
					if got != want {
						rt.Fatalf("successes, failures, ignored, rejections, opened = %v, model %v", got, want)
					}
					if st.Forced != m.forced {
						rt.Fatalf("forced %v, model %v", st.Forced, m.forced)
					}
				},
			})
		})
	})
}
