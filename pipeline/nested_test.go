package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/cache"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
	"github.com/bulwark-go/bulwark/rollback"
)

// Per-call options apply to the call they were given to, not to the calls
// made inside its function; and a value served from a cache deep inside a
// call marks every call whose result is made of it.

// callForm runs fn for executor as Do or as a Middleware-wrapped Func.
type callForm struct {
	name string
	call func(ctx context.Context, s *pipeline.Stack, executor string, fn bulwark.Func[string], opts ...pipeline.CallOption) (string, error)
}

var callForms = []callForm{
	{"Do", pipeline.Do[string]},
	{"Middleware", func(ctx context.Context, s *pipeline.Stack, executor string, fn bulwark.Func[string], opts ...pipeline.CallOption) (string, error) {
		return pipeline.Middleware[string](s, executor, opts...)(fn)(ctx)
	}},
}

func TestAttemptsFiveOnCheckoutDoesNotRetryNestedPaymentsCharge(t *testing.T) {
	for _, outer := range callForms {
		for _, checkoutRetry := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/checkout retry layer %v", outer.name, checkoutRetry), func(t *testing.T) {
				s, err := pipeline.New(pipeline.Config{})
				require.NoError(t, err)
				require.NoError(t, s.Configure("payments", pipeline.Config{Retry: &retry.Config{MaxAttempts: 1}}))
				checkout := pipeline.Config{}
				if checkoutRetry {
					checkout.Retry = &retry.Config{MaxAttempts: 3, NoWait: true}
				}
				require.NoError(t, s.Configure("checkout", checkout))
				charges, runs := 0, 0
				_, err = outer.call(t.Context(), s, "checkout", func(ctx context.Context) (string, error) {
					runs++
					_, seen := retry.MaxAttemptsFrom(ctx)
					assert.False(t, seen, "checkout's function sees checkout's Attempts")
					id, err := pipeline.Do(ctx, s, "payments", func(context.Context) (string, error) {
						charges++
						return "", errors.New("gateway timeout")
					})
					if err != nil {
						return "", retry.Permanent(err)
					}
					return id, nil
				}, pipeline.Attempts(5))
				require.Error(t, err)
				assert.Equal(t, 1, runs)
				assert.Equal(t, 1, charges, "payments (MaxAttempts 1) charged more than once")
			})
		}
	}
}

// A key attached with retry.WithMaxAttempts by the caller of an executor
// without a Retry layer does not reach a call made inside it either.
func TestWithMaxAttemptsFiveThroughExecutorWithoutRetryDoesNotReachNestedCall(t *testing.T) {
	for _, outer := range callForms {
		t.Run(outer.name, func(t *testing.T) {
			s, err := pipeline.New(pipeline.Config{})
			require.NoError(t, err)
			require.NoError(t, s.Configure("payments", pipeline.Config{Retry: &retry.Config{MaxAttempts: 1}}))
			charges := 0
			ctx := retry.WithMaxAttempts(t.Context(), 5)
			_, _ = outer.call(ctx, s, "app", func(ctx context.Context) (string, error) {
				return pipeline.Do(ctx, s, "payments", func(context.Context) (string, error) {
					charges++
					return "", errors.New("gateway timeout")
				})
			})
			assert.Equal(t, 1, charges)
		})
	}
}

// The outer call's cache.WithKey("page:team") must not key the two
// unkeyed lookups made inside it: bob's failed lookup was answered with
// alice's email.
func TestWithKeyPageTeamDoesNotAnswerNestedBobLookupWithAlice(t *testing.T) {
	for _, outer := range callForms {
		t.Run(outer.name, func(t *testing.T) {
			s, err := pipeline.New(pipeline.Config{})
			require.NoError(t, err)
			require.NoError(t, s.Configure("users", pipeline.Config{Fallback: &pipeline.FallbackConfig{}}))
			email := func(id string, down bool) bulwark.Func[string] {
				return func(context.Context) (string, error) {
					if down {
						return "", errDown
					}
					return id + "@example.com", nil
				}
			}
			render := func(ctx context.Context) (string, error) {
				_, seen := cache.AttachedKey[string](ctx)
				assert.False(t, seen, "the outer call's key is attached for the calls inside it")
				k, _ := cache.KeyFrom[string](ctx)
				assert.Equal(t, "page:team", k, "the function still reads its call's key as data")
				a, err := pipeline.Do(ctx, s, "users", email("alice", false))
				if err != nil {
					return "", err
				}
				b, err := pipeline.Do(ctx, s, "users", email("bob", true))
				if err != nil {
					return "", err
				}
				return a + "," + b, nil
			}
			got, err := outer.call(cache.WithKey(t.Context(), "page:team"), s, "app", render)
			require.ErrorIs(t, err, errDown, "got %q", got)
		})
	}
}

// idempotency.WithKey attached for a call to an executor without an
// Idempotency layer must not key a call made inside it: the second order
// (another payload) was answered with the first one's stored result.
func TestIdempotencyWithKeyOnExecutorWithoutIdempotencyDoesNotKeyNestedOrder(t *testing.T) {
	for _, outer := range callForms {
		t.Run(outer.name, func(t *testing.T) {
			s, err := pipeline.New(pipeline.Config{})
			require.NoError(t, err)
			require.NoError(t, s.Configure("orders", pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}}))
			ctx := idempotency.WithKey(t.Context(), "request-7")
			place := func(item string) bulwark.Func[string] {
				return func(ctx context.Context) (string, error) {
					_, _, seen := idempotency.AttachedKey(ctx)
					assert.False(t, seen)
					return pipeline.Do(ctx, s, "orders", func(context.Context) (string, error) { return item, nil })
				}
			}
			first, err := outer.call(ctx, s, "app", place("book"))
			require.NoError(t, err)
			second, err := outer.call(ctx, s, "app", place("pen"))
			require.NoError(t, err)
			assert.Equal(t, "book", first)
			assert.Equal(t, "pen", second, "a nested unkeyed order replayed another's result")
		})
	}
}

// A price served from the catalog's fallback inside an idempotent order
// must not become the order's recorded result (it was replayed at the
// second call, even once the catalog was back).
func TestNestedCatalogPriceFromFallbackIsNotRecordedAsOrderResult(t *testing.T) {
	for _, inner := range callForms {
		t.Run(inner.name, func(t *testing.T) {
			s, err := pipeline.New(pipeline.Config{})
			require.NoError(t, err)
			require.NoError(t, s.Configure("catalog", pipeline.Config{Fallback: &pipeline.FallbackConfig{}}))
			require.NoError(t, s.Configure("orders", pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}}))
			price, down := "10", false
			getPrice := func(context.Context) (string, error) {
				if down {
					return "", errDown
				}
				return price, nil
			}
			_, err = inner.call(t.Context(), s, "catalog", getPrice, pipeline.Operation("price"))
			require.NoError(t, err)
			price, down = "20", true
			order := func(ctx context.Context) (string, error) {
				return inner.call(ctx, s, "catalog", getPrice, pipeline.Operation("price"))
			}
			r1 := pipeline.Execute(t.Context(), s, "orders", order, pipeline.IdempotencyKey("order-1"))
			require.NoError(t, r1.Err)
			assert.Equal(t, "10", r1.Value)
			assert.True(t, r1.FromCache, "the order's value is made of a cached price")
			down = false
			r2 := pipeline.Execute(t.Context(), s, "orders", order, pipeline.IdempotencyKey("order-1"))
			require.NoError(t, r2.Err)
			assert.False(t, r2.Replayed, "the cached price was recorded as the order's result")
			assert.Equal(t, "20", r2.Value)
		})
	}
}

// The caller's Report, attached with bulwark.WithReport, learns that a
// nested Do was answered from its fallback.
func TestDoFromFallbackMarksCallerReport(t *testing.T) {
	s, err := pipeline.New(pipeline.Config{})
	require.NoError(t, err)
	require.NoError(t, s.Configure("catalog", pipeline.Config{Fallback: &pipeline.FallbackConfig{}}))
	ok := func(context.Context) (int, error) { return 1, nil }
	fail := func(context.Context) (int, error) { return 0, errDown }
	_, err = pipeline.Do(t.Context(), s, "catalog", ok, pipeline.Operation("price"))
	require.NoError(t, err)

	ctx, report := bulwark.WithReport(t.Context())
	_, err = pipeline.Do(ctx, s, "catalog", ok, pipeline.Operation("price"))
	require.NoError(t, err)
	assert.False(t, report.FromCache(), "a fresh value marked the caller")
	v, err := pipeline.Do(ctx, s, "catalog", fail, pipeline.Operation("price"))
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.True(t, report.FromCache())
}

// A quote made of a price served from the prices fallback must not be
// stored by the quotes fallback as fresh: at t=8m it was served although
// 8 minutes old, with MaxAge 5m and a reported age of 4m.
func TestQuoteMadeOfCachedPriceIsNotServedPastMaxAgeAtEightMinutes(t *testing.T) {
	for _, inner := range callForms {
		t.Run(inner.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var rec recorder
				fb := &pipeline.FallbackConfig{FallbackConfig: cache.FallbackConfig{MaxAge: 5 * time.Minute, OnEvent: rec.listen}}
				s, err := pipeline.New(pipeline.Config{})
				require.NoError(t, err)
				require.NoError(t, s.Configure("prices", pipeline.Config{Fallback: fb}))
				require.NoError(t, s.Configure("quotes", pipeline.Config{Fallback: fb}))
				up := true
				price := func(context.Context) (string, error) {
					if !up {
						return "", errDown
					}
					return "price@t0", nil
				}
				quote := func(ctx context.Context) (string, error) {
					return inner.call(ctx, s, "prices", price, pipeline.Operation("price"))
				}
				ctx := context.Background()
				r := pipeline.Execute(ctx, s, "quotes", quote, pipeline.Operation("quote"))
				require.NoError(t, r.Err)

				time.Sleep(4 * time.Minute)
				up = false
				r = pipeline.Execute(ctx, s, "quotes", quote, pipeline.Operation("quote"))
				require.NoError(t, r.Err)
				assert.True(t, r.FromCache)

				time.Sleep(4 * time.Minute)
				r = pipeline.Execute(ctx, s, "quotes", quote, pipeline.Operation("quote"))
				require.ErrorIs(t, r.Err, errDown, "an 8-minute-old value was served with MaxAge 5m")
				for _, e := range rec.all() {
					if e.Kind == bulwark.FallbackUsed {
						assert.LessOrEqual(t, e.Duration, 4*time.Minute)
					}
				}
			})
		})
	}
}

// A keyed workflow step with Undo whose function makes a nested call
// answered from a fallback registers no Undo for the cached value.
func TestKeyedStepWithUndoMadeOfNestedCachedValueRegistersNoUndo(t *testing.T) {
	s, err := pipeline.New(pipeline.Config{})
	require.NoError(t, err)
	require.NoError(t, s.Configure("catalog", pipeline.Config{Fallback: &pipeline.FallbackConfig{}}))
	require.NoError(t, s.Configure("orders", pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}}))
	ok := func(context.Context) (int, error) { return 10, nil }
	fail := func(context.Context) (int, error) { return 0, errDown }
	_, err = pipeline.Do(t.Context(), s, "catalog", ok, pipeline.Operation("price"))
	require.NoError(t, err)

	undone := 0
	_, err = rollback.Do(t.Context(), func(ctx context.Context) (int, error) {
		_, err := pipeline.Do(ctx, s, "orders", func(ctx context.Context) (int, error) {
			return pipeline.Do(ctx, s, "catalog", fail, pipeline.Operation("price"))
		}, pipeline.IdempotencyKey("order-1"), pipeline.Undo("cancel", func(context.Context, int) error {
			undone++
			return nil
		}))
		require.NoError(t, err)
		return 0, errors.New("a later step failed")
	})
	require.Error(t, err)
	assert.Equal(t, 0, undone, "an Undo was registered for a value served from a cache")
}

// A call made inside fn in the Middleware form annotates its own outcome,
// not the enclosing call's: the enclosing call ran fn, so it is neither
// Replayed, nor Rejected, nor RolledBack because a nested call was; only
// FromCache (its value is made of a cached one) is passed on.
func TestNestedMiddlewareReplayOrRejectionDoesNotMarkEnclosingCall(t *testing.T) {
	s, err := pipeline.New(pipeline.Config{})
	require.NoError(t, err)
	require.NoError(t, s.Configure("ledger", pipeline.Config{Idempotency: &pipeline.IdempotencyConfig{}}))
	require.NoError(t, s.Configure("flaky", pipeline.Config{
		Breaker:  &breaker.Config{FailureThreshold: 1},
		Rollback: &rollback.Config{},
	}))
	ledger := pipeline.Middleware[string](s, "ledger", pipeline.IdempotencyKey("entry-1"))
	entry := ledger(func(context.Context) (string, error) { return "entry", nil })
	_, err = entry(t.Context())
	require.NoError(t, err)
	flaky := pipeline.Middleware[string](s, "flaky")(func(ctx context.Context) (string, error) {
		rollback.OnRollback(ctx, "undo", func(context.Context) error { return nil })
		return "", errDown
	})
	_, _ = flaky(t.Context()) // opens the circuit, rolls back

	runs := 0
	r := pipeline.Execute(t.Context(), s, "app", func(ctx context.Context) (string, error) {
		runs++
		v, err := entry(ctx) // replayed
		require.NoError(t, err)
		_, err = flaky(ctx) // rejected
		require.Error(t, err)
		return v, nil
	})
	require.NoError(t, r.Err)
	assert.Equal(t, 1, runs)
	assert.False(t, r.Replayed, "the enclosing call ran fn")
	assert.False(t, r.Rejected, "the enclosing call was not refused")
	assert.False(t, r.FromCache)
	assert.Equal(t, 1, r.Attempts)
}

// The events of a Middleware call made inside a Do call's function are
// not labelled with the Do call's Operation.
func TestNestedMiddlewareEventsAreNotLabelledWithOuterOperationRender(t *testing.T) {
	s, err := pipeline.New(pipeline.Config{})
	require.NoError(t, err)
	var rec recorder
	unsubscribe := s.Subscribe(rec.listen)
	defer unsubscribe()
	require.NoError(t, s.Configure("users", pipeline.Config{Fallback: &pipeline.FallbackConfig{}}))
	lookup := pipeline.Middleware[string](s, "users", pipeline.FallbackKey("user:alice"))
	ok := lookup(func(context.Context) (string, error) { return "alice", nil })
	fail := lookup(func(context.Context) (string, error) { return "", errDown })
	_, err = ok(t.Context())
	require.NoError(t, err)
	_, err = pipeline.Do(t.Context(), s, "app", func(ctx context.Context) (string, error) {
		return fail(ctx)
	}, pipeline.Operation("render"))
	require.NoError(t, err)
	used := 0
	for _, e := range rec.all() {
		if e.Kind == bulwark.FallbackUsed {
			used++
			assert.Equal(t, "users", e.Executor)
			assert.NotEqual(t, "render", e.Operation, "the users call was labelled with the app call's operation")
		}
	}
	assert.Equal(t, 1, used)
}
