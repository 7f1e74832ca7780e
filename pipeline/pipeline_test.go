package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

func newStack(t *testing.T, cfg pipeline.Config) *pipeline.Stack {
	t.Helper()
	s, err := pipeline.New(cfg)
	require.NoError(t, err)
	return s
}

func TestTransientErrorRetriedThenSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		calls := 0
		r := pipeline.Execute(t.Context(), s, "notion", func(context.Context) (string, error) {
			calls++
			if calls == 1 {
				return "", errDown
			}
			return "page-1", nil
		})
		require.NoError(t, r.Err)
		assert.True(t, r.Success())
		assert.Equal(t, "page-1", r.Value)
		assert.Equal(t, 2, r.Attempts)
		assert.False(t, r.FromCache || r.Replayed || r.Rejected || r.RolledBack)
		assert.Positive(t, r.Duration, "the retry waited, in virtual time")

		// The breaker saw one logical call, a success.
		st := s.Breaker("notion").Stats()
		assert.Equal(t, int64(1), st.Total)
		assert.Equal(t, int64(1), st.Successes)
	})
}

func TestOutageOpensBreakerAndFallbackServesCachedValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Unreliable() // opens after 3 failures, resets after 60s, closes after 3 probes
		cfg.Retry = &retry.Config{MaxAttempts: 1}
		s := newStack(t, cfg)
		ctx := t.Context()
		var down atomic.Bool
		var ran atomic.Int32
		page := func(context.Context) (string, error) {
			ran.Add(1)
			if down.Load() {
				return "", errDown
			}
			return "page v1", nil
		}
		get := func() pipeline.Result[string] {
			return pipeline.Execute(ctx, s, "notion", page, pipeline.Operation("get-page"))
		}

		r := get()
		require.NoError(t, r.Err)
		assert.False(t, r.FromCache)

		down.Store(true)
		for range 3 {
			time.Sleep(time.Second)
			r = get()
			require.NoError(t, r.Err, "failures are answered from the cache")
			assert.True(t, r.FromCache)
			assert.False(t, r.Rejected)
			assert.Equal(t, "page v1", r.Value)
		}
		assert.Equal(t, breaker.Open, s.Breaker("notion").State())
		assert.Equal(t, int32(4), ran.Load())

		// While OPEN the breaker rejects without running fn, and the fallback answers.
		r = get()
		require.NoError(t, r.Err)
		assert.True(t, r.Rejected)
		assert.True(t, r.FromCache)
		assert.Equal(t, "page v1", r.Value)
		assert.Zero(t, r.Attempts)
		assert.Equal(t, int32(4), ran.Load())

		// A call with SkipFallback gets the rejection itself.
		r = pipeline.Execute(ctx, s, "notion", page, pipeline.Operation("get-page"), pipeline.SkipFallback())
		assert.ErrorIs(t, r.Err, breaker.ErrOpen)
		assert.ErrorIs(t, r.Err, bulwark.ErrRejected)
		assert.False(t, r.FromCache)

		// Another operation has nothing cached: the rejection comes back.
		r = pipeline.Execute(ctx, s, "notion", page, pipeline.Operation("list-pages"))
		assert.ErrorIs(t, r.Err, breaker.ErrOpen)

		// After the reset timeout the service is back: three probes close it.
		down.Store(false)
		time.Sleep(60 * time.Second)
		synctest.Wait()
		for range 3 {
			r = get()
			require.NoError(t, r.Err)
			assert.False(t, r.FromCache)
		}
		assert.Equal(t, breaker.Closed, s.Breaker("notion").State())
	})
}

func TestFallbackRespectsMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Config{Fallback: &pipeline.FallbackConfig{}}
		cfg.Fallback.MaxAge = time.Minute
		s := newStack(t, cfg)
		ok := func(context.Context) (int, error) { return 7, nil }
		fail := func(context.Context) (int, error) { return 0, errDown }

		require.NoError(t, pipeline.Execute(t.Context(), s, "api", ok, pipeline.Operation("get")).Err)
		time.Sleep(59 * time.Second)
		r := pipeline.Execute(t.Context(), s, "api", fail, pipeline.Operation("get"))
		assert.True(t, r.FromCache)
		assert.Equal(t, 7, r.Value)

		time.Sleep(2 * time.Second)
		r = pipeline.Execute(t.Context(), s, "api", fail, pipeline.Operation("get"))
		assert.False(t, r.FromCache)
		assert.ErrorIs(t, r.Err, errDown)
	})
}

func TestDuplicateCallIsReplayed(t *testing.T) {
	s := newStack(t, pipeline.Reliable())
	ctx := t.Context()
	var ran atomic.Int32
	create := func(context.Context) (string, error) {
		ran.Add(1)
		return "card-42", nil
	}
	first := pipeline.Execute(ctx, s, "trello", create, pipeline.IdempotencyKeyParts("create-card", "sprint 7"))
	require.NoError(t, first.Err)
	assert.False(t, first.Replayed)
	assert.Equal(t, 1, first.Attempts)

	again := pipeline.Execute(ctx, s, "trello", create, pipeline.IdempotencyKeyParts("create-card", "sprint 7"))
	require.NoError(t, again.Err)
	assert.True(t, again.Replayed)
	assert.Equal(t, "card-42", again.Value)
	assert.Zero(t, again.Attempts)
	assert.Equal(t, int32(1), ran.Load())

	// Other parts are another operation.
	other := pipeline.Execute(ctx, s, "trello", create, pipeline.IdempotencyKeyParts("create-card", "sprint 8"))
	assert.False(t, other.Replayed)
	assert.Equal(t, int32(2), ran.Load())

	// The same parts on another executor are another key (namespaced).
	slack := pipeline.Execute(ctx, s, "slack", create, pipeline.IdempotencyKeyParts("create-card", "sprint 7"))
	assert.False(t, slack.Replayed)
	assert.Equal(t, int32(3), ran.Load())

	// Without a key the layer does nothing.
	pipeline.Execute(ctx, s, "trello", create)
	pipeline.Execute(ctx, s, "trello", create)
	assert.Equal(t, int32(5), ran.Load())
}

func TestIdempotencyKeyOptionsAndFingerprint(t *testing.T) {
	s := newStack(t, pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}})
	ctx := t.Context()
	fn := func(context.Context) (int, error) { return 1, nil }
	key, err := idempotency.Key("payments", "charge", 1001)
	require.NoError(t, err)

	r := pipeline.Execute(ctx, s, "payments", fn, pipeline.IdempotencyKey(key), pipeline.Fingerprint("eur 10"))
	require.NoError(t, r.Err)
	r = pipeline.Execute(ctx, s, "payments", fn, pipeline.IdempotencyKey(key), pipeline.Fingerprint("eur 10"))
	assert.True(t, r.Replayed)
	r = pipeline.Execute(ctx, s, "payments", fn, pipeline.IdempotencyKey(key), pipeline.Fingerprint("eur 99"))
	assert.ErrorIs(t, r.Err, idempotency.ErrKeyReuse)

	// A key attached to the context is honoured when no option gives one.
	r = pipeline.Execute(idempotency.WithKeyPayload(ctx, key, "eur 10"), s, "payments", fn)
	assert.True(t, r.Replayed)

	// Key parts that cannot be encoded fail the call before anything runs.
	r = pipeline.Execute(ctx, s, "payments", func(context.Context) (int, error) {
		t.Error("fn ran")
		return 0, nil
	}, pipeline.IdempotencyKeyParts(func() {}))
	assert.ErrorIs(t, r.Err, idempotency.ErrInvalidKeyPart)
	assert.Contains(t, r.Err.Error(), `executor "payments"`)
}

func TestFailureAfterCompensationRollsBackEachAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable()) // retry: 3 attempts
		var undone atomic.Int32
		r := pipeline.Execute(t.Context(), s, "notion", func(ctx context.Context) (string, error) {
			// Step 1 completes and registers its undo; step 2 fails.
			require.NoError(t, rollback.OnRollback(ctx, "delete-page", func(context.Context) error {
				undone.Add(1)
				return nil
			}))
			return "", errDown
		})
		assert.ErrorIs(t, r.Err, errDown)
		assert.True(t, r.RolledBack)
		assert.Equal(t, 3, r.Attempts)
		assert.Equal(t, int32(3), undone.Load(), "one compensation per failed attempt")
	})
}

func TestRollbackOffMeansNoScope(t *testing.T) {
	s := newStack(t, pipeline.Config{Breaker: &breaker.Config{}})
	r := pipeline.Execute(t.Context(), s, "x", func(ctx context.Context) (int, error) {
		return 0, rollback.OnRollback(ctx, "undo", func(context.Context) error { return nil })
	})
	assert.ErrorIs(t, r.Err, rollback.ErrNoScope)
	assert.False(t, r.RolledBack)
}

func TestExecutorsAreIsolated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Critical() // opens after 2 failures
		cfg.Retry = nil
		s := newStack(t, cfg)
		ctx := t.Context()
		fail := func(context.Context) (int, error) { return 0, errDown }
		ok := func(context.Context) (int, error) { return 1, nil }
		for range 2 {
			pipeline.Execute(ctx, s, "notion", fail)
			require.NoError(t, pipeline.Execute(ctx, s, "slack", ok).Err)
		}
		assert.Equal(t, breaker.Open, s.Breaker("notion").State())
		assert.Equal(t, breaker.Closed, s.Breaker("slack").State())

		assert.True(t, pipeline.Execute(ctx, s, "notion", ok).Rejected)
		r := pipeline.Execute(ctx, s, "slack", ok)
		require.NoError(t, r.Err)
		assert.False(t, r.Rejected)
		assert.Equal(t, []string{"notion", "slack"}, s.Executors())
	})
}

func TestRetryNeverRetriesARejection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Critical()
		s := newStack(t, cfg)
		ctx := t.Context()
		s.Breaker("payments") // not made yet
		require.NoError(t, s.Configure("payments", cfg))
		s.Breaker("payments").ForceOpen()
		var events recorder
		defer s.Subscribe(events.listen)()

		ran := false
		r := pipeline.Execute(ctx, s, "payments", func(context.Context) (int, error) { ran = true; return 1, nil })
		assert.False(t, ran)
		assert.True(t, r.Rejected)
		assert.ErrorIs(t, r.Err, breaker.ErrOpen)
		assert.Zero(t, r.Attempts)
		assert.Zero(t, events.count("payments", bulwark.RetryAttempt), "a rejection is never retried")
		assert.Equal(t, 1, events.count("payments", bulwark.RequestRejected))
	})
}

func TestIdempotencySeesOneLogicalCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		ctx := t.Context()
		attempts := 0
		fn := func(context.Context) (string, error) {
			attempts++
			if attempts < 3 {
				return "", errDown
			}
			return "sent", nil
		}
		r := pipeline.Execute(ctx, s, "slack", fn, pipeline.IdempotencyKey("msg-1"))
		require.NoError(t, r.Err)
		assert.Equal(t, 3, r.Attempts)

		// The duplicate replays the one stored result; fn does not run again.
		r = pipeline.Execute(ctx, s, "slack", fn, pipeline.IdempotencyKey("msg-1"))
		assert.True(t, r.Replayed)
		assert.Equal(t, "sent", r.Value)
		assert.Equal(t, 3, attempts)
	})
}

func TestStateIsSharedAcrossResultTypes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Critical()
		cfg.Retry = nil
		s := newStack(t, cfg)
		ctx := t.Context()
		pipeline.Execute(ctx, s, "notion", func(context.Context) (string, error) { return "", errDown })
		pipeline.Execute(ctx, s, "notion", func(context.Context) (int, error) { return 0, errDown })
		// Two failures of different result types opened the one breaker.
		r := pipeline.Execute(ctx, s, "notion", func(context.Context) ([]byte, error) { return nil, nil })
		assert.True(t, r.Rejected)
	})
}

func TestConfigurationErrorsNameExecutorAndField(t *testing.T) {
	bad := pipeline.Reliable()
	bad.Breaker.FailureThreshold = -1
	_, err := pipeline.New(bad)
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	assert.Contains(t, err.Error(), "defaults")
	assert.Contains(t, err.Error(), "FailureThreshold")

	s := newStack(t, pipeline.Reliable())
	cases := map[string]func(*pipeline.Config){
		"FailureThreshold":    func(c *pipeline.Config) { c.Breaker.FailureThreshold = -1 },
		"MaxAttempts":         func(c *pipeline.Config) { c.Retry.MaxAttempts = -2 },
		"TTL":                 func(c *pipeline.Config) { c.Idempotency.TTL = -time.Second },
		"MaxAge":              func(c *pipeline.Config) { c.Fallback = &pipeline.FallbackConfig{}; c.Fallback.MaxAge = -1 },
		"MaxEntries":          func(c *pipeline.Config) { c.Fallback = &pipeline.FallbackConfig{MaxEntries: -1} },
		"Attempts":            func(c *pipeline.Config) { c.Rollback.Attempts = -1 },
		"RandomizationFactor": func(c *pipeline.Config) { c.Retry.RandomizationFactor = 2 },
	}
	for field, mutate := range cases {
		cfg := pipeline.Reliable()
		mutate(&cfg)
		err := s.Configure("payments", cfg)
		require.Error(t, err, field)
		assert.ErrorIs(t, err, pipeline.ErrInvalid, field)
		assert.Contains(t, err.Error(), `executor "payments"`, field)
		assert.Contains(t, err.Error(), field)
	}
	assert.Empty(t, s.Executors(), "a failed Configure changes nothing")

	assert.ErrorIs(t, s.Configure("", pipeline.Reliable()), pipeline.ErrInvalid)
	r := pipeline.Execute[int](t.Context(), s, "", func(context.Context) (int, error) { return 1, nil })
	assert.ErrorIs(t, r.Err, pipeline.ErrInvalid)
	r = pipeline.Execute[int](t.Context(), s, "x", nil)
	assert.ErrorIs(t, r.Err, pipeline.ErrInvalid)
	r = pipeline.Execute(t.Context(), nil, "x", func(context.Context) (int, error) { return 1, nil })
	assert.ErrorIs(t, r.Err, pipeline.ErrInvalid)
	var zero pipeline.CallOption
	r = pipeline.Execute(t.Context(), s, "x", func(context.Context) (int, error) { return 1, nil }, zero)
	assert.ErrorIs(t, r.Err, pipeline.ErrInvalid)
}

func TestConfigureOverridesDefaultsPerExecutor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable()) // threshold 10
		payments := pipeline.Critical()       // threshold 2
		payments.Retry = nil
		require.NoError(t, s.Configure("payments", payments))
		ctx := t.Context()
		fail := func(context.Context) (int, error) { return 0, errDown }
		for range 2 {
			pipeline.Execute(ctx, s, "payments", fail)
			pipeline.Execute(ctx, s, "slack", fail)
		}
		assert.Equal(t, breaker.Open, s.Breaker("payments").State())
		assert.Equal(t, breaker.Closed, s.Breaker("slack").State())
	})
}

func TestConfigureAfterFirstUseKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Unreliable()
		cfg.Retry = nil
		s := newStack(t, cfg)
		ctx := t.Context()
		ok := func(context.Context) (string, error) { return "v1", nil }
		fail := func(context.Context) (string, error) { return "", errDown }
		require.NoError(t, pipeline.Execute(ctx, s, "notion", ok, pipeline.Operation("get-page")).Err)
		for range 3 {
			pipeline.Execute(ctx, s, "notion", fail, pipeline.Operation("get-page"))
		}
		b := s.Breaker("notion")
		require.Equal(t, breaker.Open, b.State())

		// Reconfigure with another request timeout: breaker state and cache survive.
		cfg2 := pipeline.Unreliable()
		cfg2.Retry = nil
		cfg2.Breaker.RequestTimeout = time.Second
		require.NoError(t, s.Configure("notion", cfg2))
		assert.Same(t, b, s.Breaker("notion"))
		assert.Equal(t, breaker.Open, b.State())
		r := pipeline.Execute(ctx, s, "notion", ok, pipeline.Operation("get-page"))
		assert.True(t, r.Rejected)
		assert.True(t, r.FromCache)
		assert.Equal(t, "v1", r.Value)

		// Turning the breaker off takes effect for the next call.
		cfg3 := cfg2
		cfg3.Breaker = nil
		require.NoError(t, s.Configure("notion", cfg3))
		assert.Nil(t, s.Breaker("notion"))
		r = pipeline.Execute(ctx, s, "notion", ok, pipeline.Operation("get-page"))
		require.NoError(t, r.Err)
		assert.False(t, r.Rejected)
	})
}

func TestSubscribeReceivesEveryLayerWithExecutor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Unreliable() // opens after 3
		cfg.Retry = &retry.Config{MaxAttempts: 2, NoWait: true}
		s := newStack(t, cfg)
		var events recorder
		cancel := s.Subscribe(events.listen)
		ctx := t.Context()

		ok := func(context.Context) (int, error) { return 1, nil }
		fail := func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "undo", func(context.Context) error { return nil })
			return 0, errDown
		}
		pipeline.Execute(ctx, s, "notion", ok, pipeline.IdempotencyKey("k"), pipeline.Operation("get"))
		pipeline.Execute(ctx, s, "notion", ok, pipeline.IdempotencyKey("k"), pipeline.Operation("get"))
		for range 3 {
			pipeline.Execute(ctx, s, "notion", fail, pipeline.Operation("get"))
		}
		pipeline.Execute(ctx, s, "notion", fail, pipeline.Operation("get"))

		seen := map[bulwark.EventKind]bool{}
		for _, k := range events.kinds("notion") {
			seen[k] = true
		}
		for _, k := range []bulwark.EventKind{
			bulwark.RequestSuccess, bulwark.IdempotencyReplayed, bulwark.RetryAttempt,
			bulwark.RetryExhausted, bulwark.RollbackCompensated, bulwark.RequestFailure,
			bulwark.CircuitOpened, bulwark.RequestRejected, bulwark.FallbackUsed,
		} {
			assert.True(t, seen[k], "missing %s", k)
		}
		assert.Empty(t, events.kinds(""), "every event names its executor")

		// After cancelling, nothing more arrives.
		cancel()
		cancel()
		n := len(events.kinds("notion"))
		pipeline.Execute(ctx, s, "notion", ok)
		assert.Len(t, events.kinds("notion"), n)
	})
}

func TestLayerListenersStillReceiveTheirEvents(t *testing.T) {
	var own recorder
	cfg := pipeline.Config{Breaker: &breaker.Config{OnEvent: own.listen}}
	s := newStack(t, cfg)
	pipeline.Execute(t.Context(), s, "slack", func(context.Context) (int, error) { return 1, nil })
	assert.Equal(t, []bulwark.EventKind{bulwark.RequestSuccess}, own.kinds("slack"))
}

func TestStatsAndSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Unreliable())
		require.NoError(t, s.Configure("payments", pipeline.Config{}))
		ctx := t.Context()
		ok := func(context.Context) (int, error) { return 1, nil }
		fail := func(context.Context) (int, error) { return 0, errDown }
		pipeline.Execute(ctx, s, "notion", ok, pipeline.Operation("get"))
		for range 3 {
			pipeline.Execute(ctx, s, "notion", fail, pipeline.Operation("get"))
		}
		pipeline.Execute(ctx, s, "notion", fail, pipeline.Operation("get")) // rejected, from cache
		pipeline.Execute(ctx, s, "payments", ok)

		st := s.Stats()
		require.Contains(t, st, "notion")
		require.NotNil(t, st["notion"].Breaker)
		assert.Equal(t, breaker.Open, st["notion"].Breaker.State)
		assert.Equal(t, int64(1), st["notion"].Breaker.Rejections)
		require.NotNil(t, st["notion"].Fallback)
		assert.Equal(t, uint64(4), st["notion"].Fallback.Hits)
		assert.Nil(t, st["payments"].Breaker)
		assert.Nil(t, st["payments"].Fallback)

		want := "" +
			"EXECUTOR  STATE  SUCCESS RATE  CALLS  FAILURES  REJECTIONS  OPENED  NEXT ATTEMPT  FROM CACHE  REPLAYED\n" +
			"notion    OPEN   25.0%         5      3         1           1       in 1m0s       4           0\n" +
			"payments  -      -             -      -         -           -       -             -           -\n"
		assert.Equal(t, want, s.Summary())
	})
}

func TestPresets(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg                                    pipeline.Config
		threshold, successes                   int
		window, reset, timeout, fallbackMaxAge time.Duration
	}{
		"Reliable":   {pipeline.Reliable(), 10, 2, 120 * time.Second, 20 * time.Second, 5 * time.Second, 0},
		"Unreliable": {pipeline.Unreliable(), 3, 3, 30 * time.Second, 60 * time.Second, 15 * time.Second, 10 * time.Minute},
		"Critical":   {pipeline.Critical(), 2, 5, 30 * time.Second, 120 * time.Second, 20 * time.Second, 0},
	} {
		t.Run(name, func(t *testing.T) {
			b := tc.cfg.Breaker
			require.NotNil(t, b)
			assert.Equal(t, tc.threshold, b.FailureThreshold)
			assert.Equal(t, tc.window, b.FailureWindow)
			assert.Equal(t, tc.reset, b.ResetTimeout)
			assert.Equal(t, tc.successes, b.SuccessThreshold)
			assert.Equal(t, tc.timeout, b.RequestTimeout)
			if tc.fallbackMaxAge == 0 {
				assert.Nil(t, tc.cfg.Fallback)
			} else {
				require.NotNil(t, tc.cfg.Fallback)
				assert.Equal(t, tc.fallbackMaxAge, tc.cfg.Fallback.MaxAge)
			}
			assert.NotNil(t, tc.cfg.Idempotency)
			assert.NotNil(t, tc.cfg.Retry)
			assert.NotNil(t, tc.cfg.Rollback)
			_, err := pipeline.New(tc.cfg)
			assert.NoError(t, err)
		})
	}
	// Presets share nothing.
	a, b := pipeline.Reliable(), pipeline.Reliable()
	a.Breaker.FailureThreshold = 99
	assert.Equal(t, 10, b.Breaker.FailureThreshold)
}

func TestNewCopiesItsConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := pipeline.Critical()
		cfg.Retry = nil
		s := newStack(t, cfg)
		cfg.Breaker.FailureThreshold = 100 // must not affect s
		fail := func(context.Context) (int, error) { return 0, errDown }
		for range 2 {
			pipeline.Execute(t.Context(), s, "x", fail)
		}
		assert.Equal(t, breaker.Open, s.Breaker("x").State())
	})
}

func TestMiddleware(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		calls := 0
		fn := bulwark.Chain(pipeline.Middleware[string](s, "notion", pipeline.Operation("get")))(
			func(context.Context) (string, error) {
				calls++
				if calls == 1 {
					return "", errDown
				}
				return "ok", nil
			})
		v, err := fn(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "ok", v)
		assert.Equal(t, 2, calls)

		// Per-call keys through the context.
		ctx := idempotency.WithKey(t.Context(), "once")
		_, err = fn(ctx)
		require.NoError(t, err)
		_, err = fn(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, calls)
	})
}

func TestCallerCancellationReachesFnAndCompensationsStillRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		ctx, cancel := context.WithCancel(t.Context())
		var undone atomic.Bool
		r := pipeline.Execute(ctx, s, "notion", func(ctx context.Context) (int, error) {
			_ = rollback.OnRollback(ctx, "undo", func(ctx context.Context) error {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				undone.Store(true)
				return nil
			})
			cancel()
			return 0, ctx.Err()
		})
		assert.ErrorIs(t, r.Err, context.Canceled)
		assert.True(t, undone.Load())
		assert.True(t, r.RolledBack)
		assert.Equal(t, 1, r.Attempts, "a cancelled call is not retried")
		// The caller's cancellation does not count against the circuit.
		assert.Zero(t, s.Breaker("notion").Stats().Failures)
	})
}

func TestPanicPropagatesAndReleasesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		var undone atomic.Bool
		call := func() {
			pipeline.Execute(t.Context(), s, "notion", func(ctx context.Context) (int, error) {
				_ = rollback.OnRollback(ctx, "undo", func(context.Context) error { undone.Store(true); return nil })
				panic("boom")
			}, pipeline.IdempotencyKey("p"))
		}
		assert.PanicsWithValue(t, "boom", call)
		assert.True(t, undone.Load())
		assert.Equal(t, int64(1), s.Breaker("notion").Stats().Failures)

		// The idempotency claim was released: the key can run again.
		r := pipeline.Execute(t.Context(), s, "notion", func(context.Context) (int, error) { return 5, nil }, pipeline.IdempotencyKey("p"))
		require.NoError(t, r.Err)
		assert.False(t, r.Replayed)
	})
}

func TestConcurrentCallsAndConfiguration(t *testing.T) {
	s := newStack(t, pipeline.Unreliable())
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			exec := fmt.Sprintf("svc-%d", i%3)
			for j := range 200 {
				pipeline.Execute(ctx, s, exec, func(context.Context) (int, error) { return j, nil },
					pipeline.IdempotencyKeyParts(i, j), pipeline.Operation("op"))
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			cancel := s.Subscribe(func(bulwark.Event) {})
			_ = s.Configure("svc-1", pipeline.Reliable())
			_ = s.Summary()
			cancel()
		}
	})
	wg.Wait()
	assert.Equal(t, []string{"svc-0", "svc-1", "svc-2"}, s.Executors())
}

func TestZeroConfigCallsFnDirectly(t *testing.T) {
	s := newStack(t, pipeline.Config{})
	r := pipeline.Execute(t.Context(), s, "plain", func(context.Context) (int, error) { return 0, errDown })
	assert.ErrorIs(t, r.Err, errDown)
	assert.Equal(t, 1, r.Attempts)
	assert.Nil(t, s.Breaker("plain"))
	v, err := pipeline.Do(t.Context(), s, "plain", func(context.Context) (int, error) { return 3, nil })
	require.NoError(t, err)
	assert.Equal(t, 3, v)
}

func TestMiddlewareFollowsConfigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Config{})
		fn := pipeline.Middleware[int](s, "svc")(func(context.Context) (int, error) { return 0, errDown })
		_, err := fn(t.Context())
		assert.ErrorIs(t, err, errDown)

		// Configured after the middleware was built and used: the next call sees the breaker.
		require.NoError(t, s.Configure("svc", pipeline.Config{Breaker: &breaker.Config{FailureThreshold: 1}}))
		_, err = fn(t.Context())
		assert.ErrorIs(t, err, errDown)
		_, err = fn(t.Context())
		assert.ErrorIs(t, err, breaker.ErrOpen)

		// Invalid uses are errors, not panics.
		_, err = pipeline.Middleware[int](nil, "svc")(func(context.Context) (int, error) { return 1, nil })(t.Context())
		assert.ErrorIs(t, err, pipeline.ErrInvalid)
		_, err = pipeline.Middleware[int](s, "svc")(nil)(t.Context())
		assert.ErrorIs(t, err, pipeline.ErrInvalid)
		_, err = pipeline.Middleware[int](s, "")(func(context.Context) (int, error) { return 1, nil })(t.Context())
		assert.ErrorIs(t, err, pipeline.ErrInvalid)
	})
}

func TestWorkflowRollbackForgetsTheKeysOfUndoneSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		ctx := t.Context()
		var log []string
		pages := 0
		createPage := func(ctx context.Context) (string, error) {
			pages++
			id := fmt.Sprintf("page-%d", pages)
			log = append(log, "create "+id)
			return id, rollback.OnRollback(ctx, "delete "+id, func(context.Context) error {
				log = append(log, "delete "+id)
				return nil
			})
		}
		later := errors.New("a later step failed")

		// Run 1: the page is created, a later step fails, the workflow rolls back.
		_, err := rollback.Do(ctx, func(ctx context.Context) (int, error) {
			r := pipeline.Execute(ctx, s, "notion", createPage, pipeline.IdempotencyKeyParts("create-page", "retro"))
			require.NoError(t, r.Err)
			require.False(t, r.Replayed)
			return 0, later
		})
		require.ErrorIs(t, err, later)
		assert.Equal(t, []string{"create page-1", "delete page-1"}, log)

		// Run 2: the undone step runs again instead of replaying page-1.
		_, err = rollback.Do(ctx, func(ctx context.Context) (int, error) {
			r := pipeline.Execute(ctx, s, "notion", createPage, pipeline.IdempotencyKeyParts("create-page", "retro"))
			require.NoError(t, r.Err)
			assert.False(t, r.Replayed, "the key was forgotten with the undo")
			assert.Equal(t, "page-2", r.Value)
			return 0, nil
		})
		require.NoError(t, err)

		// Run 3 replays it; a failure after a replayed step does not forget the key.
		_, err = rollback.Do(ctx, func(ctx context.Context) (int, error) {
			r := pipeline.Execute(ctx, s, "notion", createPage, pipeline.IdempotencyKeyParts("create-page", "retro"))
			require.NoError(t, r.Err)
			assert.True(t, r.Replayed)
			return 0, later
		})
		require.ErrorIs(t, err, later)
		r := pipeline.Execute(ctx, s, "notion", createPage, pipeline.IdempotencyKeyParts("create-page", "retro"))
		assert.True(t, r.Replayed)
		assert.Equal(t, "page-2", r.Value)
		assert.Equal(t, []string{"create page-1", "delete page-1", "create page-2"}, log)
	})
}

func TestMiddlewareForgetsKeysOfUndoneSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, pipeline.Reliable())
		pages := 0
		create := pipeline.Middleware[string](s, "notion", pipeline.IdempotencyKey("create-page"))(
			func(ctx context.Context) (string, error) {
				pages++
				return fmt.Sprintf("page-%d", pages), rollback.OnRollback(ctx, "delete", func(context.Context) error { return nil })
			})
		later := errors.New("later step failed")
		_, err := rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
			_, err := create(ctx)
			require.NoError(t, err)
			return 0, later
		})
		require.ErrorIs(t, err, later)

		// The undone step runs again; then it is replayed, and the caller's
		// report still learns about it.
		v, err := create(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "page-2", v)
		_, err = rollback.Do(t.Context(), func(ctx context.Context) (string, error) {
			ctx, report := bulwark.WithReport(ctx)
			v, err := create(ctx)
			assert.True(t, report.Replayed())
			return v, err
		})
		require.NoError(t, err)
		assert.Equal(t, 2, pages)
	})
}

func TestMiddlewareCallAllocatesOnlyItsLayers(t *testing.T) {
	cfg := pipeline.Config{Fallback: &pipeline.FallbackConfig{}, Breaker: &breaker.Config{RequestTimeout: -1}, Retry: &retry.Config{}}
	s := newStack(t, cfg)
	page := &struct{ ID string }{"p1"}
	fn := pipeline.Middleware[*struct{ ID string }](s, "notion", pipeline.Operation("get"))(
		func(context.Context) (*struct{ ID string }, error) { return page, nil })
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if v, err := fn(ctx); err != nil || v != page {
			t.Fatal(v, err)
		}
	})
	assert.Zero(t, allocs, "fallback, breaker and retry through a Middleware allocate nothing")
}

func TestDoFullStackAllocatesAtMostTwice(t *testing.T) {
	cfg := pipeline.Config{
		Fallback: &pipeline.FallbackConfig{}, Breaker: &breaker.Config{RequestTimeout: -1},
		Retry: &retry.Config{}, Rollback: &rollback.Config{},
	}
	s := newStack(t, cfg)
	page := &struct{ ID string }{"p1"}
	fn := func(context.Context) (*struct{ ID string }, error) { return page, nil }
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if v, err := pipeline.Do(ctx, s, "notion", fn); err != nil || v != page {
			t.Fatal(v, err)
		}
	})
	assert.LessOrEqual(t, allocs, 2.0, "the call's context and the rollback scope")
}

// Concurrent first calls to a new executor all run through its layers:
// none may see the executor before its layers are built.
func TestConcurrentFirstCallsSeeTheLayers(t *testing.T) {
	for round := range 50 {
		s := newStack(t, pipeline.Config{Breaker: &breaker.Config{RequestTimeout: 10 * time.Second}})
		var bare atomic.Int64
		fn := func(ctx context.Context) (int, error) {
			if ctx.Done() == nil { // no request timeout: the breaker was skipped
				bare.Add(1)
			}
			return 1, nil
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 20 {
					_, _ = pipeline.Do(context.Background(), s, "new", fn)
				}
			})
		}
		wg.Wait()
		require.Zero(t, bare.Load(), "round %d: calls ran without the executor's layers", round)
	}
}
