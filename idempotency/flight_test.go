package idempotency_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
)

// gatedClaims is a store whose claims with fingerprint gate wait until
// open is closed: a call waiting for the store's answer.
type gatedClaims struct {
	idempotency.Store
	gate string
	open chan struct{}
}

func (s *gatedClaims) Claim(ctx context.Context, key, owner, fp string, lease time.Duration) (idempotency.Record, bool, error) {
	if fp == s.gate {
		<-s.open
	}
	return s.Store.Claim(ctx, key, owner, fp, lease)
}

// TestRetryIsJudgedByTheStoredFingerprint: the store holds key k with
// fingerprint A, completed (or in progress in another process). A call
// with fingerprint B waits for its claim's answer when the legitimate
// retry with fingerprint A arrives on the same Manager: the retry gets
// what the store says (the replay, or ErrInProgress), not ErrKeyReuse
// from B's flight; B gets ErrKeyReuse.
func TestRetryIsJudgedByTheStoredFingerprint(t *testing.T) {
	for _, completed := range []bool{true, false} {
		name := map[bool]string{true: "completed", false: "in progress elsewhere"}[completed]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				shared := newJSONStore(nil)
				elsewhere := newManager(t, shared, idempotency.Config{}) // another process
				release := make(chan struct{})
				holder := make(chan error, 1)
				if completed {
					_, err := idempotency.DoPayload(context.Background(), elsewhere, "k", "A", value("receipt A"))
					require.NoError(t, err)
				} else {
					go func() {
						_, err := idempotency.DoPayload(context.Background(), elsewhere, "k", "A", func(context.Context) (string, error) {
							<-release
							return "receipt A", nil
						})
						holder <- err
					}()
					synctest.Wait()
				}

				store := &gatedClaims{Store: shared, gate: "B", open: make(chan struct{})}
				m := newManager(t, store, idempotency.Config{})
				var ranB atomic.Bool
				b := make(chan error, 1)
				go func() {
					_, err := idempotency.DoPayload(context.Background(), m, "k", "B", func(context.Context) (string, error) {
						ranB.Store(true)
						return "receipt B", nil
					})
					b <- err
				}()
				synctest.Wait() // B waits for its claim's answer

				r := idempotency.Execute(context.Background(), m, "k", "A", value("must not run"))
				if completed {
					require.NoError(t, r.Err, "the retry with the stored fingerprint")
					assert.True(t, r.Replayed)
					assert.Equal(t, "receipt A", r.Value)
				} else {
					require.ErrorIs(t, r.Err, idempotency.ErrInProgress, "the retry with the stored fingerprint")
					assert.NotErrorIs(t, r.Err, idempotency.ErrKeyReuse)
				}

				close(store.open)
				assert.ErrorIs(t, <-b, idempotency.ErrKeyReuse, "the call with another payload")
				assert.False(t, ranB.Load())
				if !completed {
					close(release)
					require.NoError(t, <-holder)
				}
			})
		})
	}
}

// TestSamePayloadStillSharesAFlight: calls with the same key and
// fingerprint still wait for one another (one execution), while a call
// with another fingerprint is judged by the store (ErrKeyReuse) without
// disturbing them.
func TestSamePayloadStillSharesAFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		m := newManager(t, store, idempotency.Config{})
		var runs atomic.Int32
		release := make(chan struct{})
		fn := counted(&runs, func(context.Context) (int, error) { <-release; return 7, nil })
		results := make(chan idempotency.Result[int], 3)
		for range 3 {
			go func() { results <- idempotency.Execute(context.Background(), m, "k", "A", fn) }()
		}
		synctest.Wait()
		_, err := idempotency.DoPayload(context.Background(), m, "k", "B", fn)
		assert.ErrorIs(t, err, idempotency.ErrKeyReuse)
		close(release)
		replays := 0
		for range 3 {
			r := <-results
			require.NoError(t, r.Err)
			assert.Equal(t, 7, r.Value)
			if r.Replayed {
				replays++
			}
		}
		assert.Equal(t, 2, replays)
		assert.Equal(t, int32(1), runs.Load())
		assert.Equal(t, 2, store.count("claim"), "B's call asked the store; the duplicates did not")
	})
}

// TestOperationCallingItsOwnKeyGetsErrReentrant: an operation that calls
// Execute (directly or through the Middleware) with its own key, on its
// context, would wait for itself: it gets ErrReentrant at once, and the
// outer call completes.
func TestOperationCallingItsOwnKeyGetsErrReentrant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, nil, idempotency.Config{})
		var inner error
		v, err := idempotency.Do(context.Background(), m, "k", func(ctx context.Context) (int, error) {
			_, inner = idempotency.Do(ctx, m, "k", value(2))
			return 1, nil
		})
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.ErrorIs(t, inner, idempotency.ErrReentrant)
		assert.ErrorIs(t, inner, idempotency.ErrInvalid)

		// Through the Middleware, with the key in the context, two levels
		// deep: the key attached for the outer call does not key the
		// nested one (AttachedKey stops at the running operation), so the
		// nested call runs unkeyed instead of waiting for itself.
		mw := idempotency.Middleware[int](m, nil)
		var nested error
		nestedRan := false
		call := mw(func(ctx context.Context) (int, error) {
			_, err := idempotency.Do(ctx, m, "other", func(ctx context.Context) (int, error) {
				_, nested = mw(func(context.Context) (int, error) { nestedRan = true; return 3, nil })(ctx)
				return 0, nil
			})
			return 4, err
		})
		v, err = call(idempotency.WithKey(context.Background(), "mw"))
		require.NoError(t, err)
		assert.Equal(t, 4, v)
		assert.NoError(t, nested)
		assert.True(t, nestedRan)

		// With the running key attached again on purpose, it is re-entrant.
		call = mw(func(ctx context.Context) (int, error) {
			key, _, ok := idempotency.KeyFrom(ctx)
			require.True(t, ok)
			_, nested = mw(value(3))(idempotency.WithKey(ctx, key))
			return 5, nil
		})
		v, err = call(idempotency.WithKey(context.Background(), "mw2"))
		require.NoError(t, err)
		assert.Equal(t, 5, v)
		assert.ErrorIs(t, nested, idempotency.ErrReentrant)
	})
}

// TestListenerMayCallTheSameKey: a listener that calls Execute with the
// key of the event it handles, from an idempotency:replayed or
// idempotency:conflict event, gets the answer any duplicate gets (the
// replay, the same error) instead of waiting for the call whose event it
// handles, for ever.
func TestListenerMayCallTheSameKey(t *testing.T) {
	type answer struct {
		r  idempotency.Result[string]
		ok bool
	}
	for _, tt := range []struct {
		name  string
		store func(t *testing.T) idempotency.Store
	}{
		{"memory", func(t *testing.T) idempotency.Store { return newMemory(t, 0) }},
		{"serializing", func(t *testing.T) idempotency.Store { return newJSONStore(nil) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := tt.store(t)
				var m *idempotency.Manager
				nested := map[bulwark.EventKind]*answer{bulwark.IdempotencyReplayed: {}, bulwark.IdempotencyConflict: {}}
				m = newManager(t, store, idempotency.Config{OnEvent: func(ev bulwark.Event) {
					if a, ok := nested[ev.Kind]; ok && ev.Key == "k" && !a.ok {
						a.ok = true // once: a listener that always re-enters recurses
						a.r = idempotency.Execute(context.Background(), m, "k", "", value("must not run"))
					}
				}})
				// The replay of a completed key, from the store's answer
				// (or the in-memory fast path).
				_, err := idempotency.Do(context.Background(), m, "k", value("v"))
				require.NoError(t, err)
				r := idempotency.Execute(context.Background(), m, "k", "", value("must not run"))
				require.True(t, r.Replayed)
				got := nested[bulwark.IdempotencyReplayed]
				require.True(t, got.ok)
				assert.NoError(t, got.r.Err)
				assert.True(t, got.r.Replayed)
				assert.Equal(t, "v", got.r.Value)

				// A conflict: the key is in progress in another process.
				require.NoError(t, func() error { _, err := m.Forget(context.Background(), "k"); return err }())
				elsewhere := newManager(t, store, idempotency.Config{})
				release := make(chan struct{})
				done := make(chan error, 1)
				go func() {
					_, err := idempotency.Do(context.Background(), elsewhere, "k", func(context.Context) (string, error) { <-release; return "w", nil })
					done <- err
				}()
				synctest.Wait()
				_, err = idempotency.Do(context.Background(), m, "k", value("must not run"))
				require.ErrorIs(t, err, idempotency.ErrInProgress)
				got = nested[bulwark.IdempotencyConflict]
				require.True(t, got.ok)
				assert.ErrorIs(t, got.r.Err, idempotency.ErrInProgress)
				close(release)
				require.NoError(t, <-done)
			})
		})
	}
}

// TestWaiterListenerMayCallTheSameKey: the replayed event of a call that
// waited for another in this process reaches a listener that calls the
// same key: it gets the replay.
func TestWaiterListenerMayCallTheSameKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m *idempotency.Manager
		var nested atomic.Pointer[idempotency.Result[int]]
		var once atomic.Bool
		m = newManager(t, newJSONStore(nil), idempotency.Config{OnEvent: func(ev bulwark.Event) {
			if ev.Kind == bulwark.IdempotencyReplayed && once.CompareAndSwap(false, true) {
				r := idempotency.Execute(context.Background(), m, "k", "", value(0))
				nested.Store(&r)
			}
		}})
		release := make(chan struct{})
		leader := make(chan error, 1)
		go func() {
			_, err := idempotency.Do(context.Background(), m, "k", func(context.Context) (int, error) { <-release; return 5, nil })
			leader <- err
		}()
		synctest.Wait()
		waiter := make(chan idempotency.Result[int], 1)
		go func() { waiter <- idempotency.Execute(context.Background(), m, "k", "", value(0)) }()
		synctest.Wait()
		close(release)
		require.NoError(t, <-leader)
		w := <-waiter
		assert.True(t, w.Replayed)
		assert.Equal(t, 5, w.Value)
		r := nested.Load()
		require.NotNil(t, r)
		assert.NoError(t, r.Err)
		assert.Equal(t, 5, r.Value)
	})
}
