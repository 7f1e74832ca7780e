package idempotency_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/idempotency"
)

// Each user callback of the idempotency layer panics once: the panic
// reaches the caller, a waiter gets ErrPanicked (or its own answer), and
// the key is usable again: the next call runs fn (or replays what was
// recorded).

// callRecovering calls fn and returns what it panicked with.
func callRecovering(fn func()) (p any) {
	defer func() { p = recover() }()
	fn()
	return nil
}

// leaderAndWaiter runs call as a leader whose fn blocks until released,
// and a second call for the same key waiting for it; it returns the
// leader's panic and the waiter's error.
func leaderAndWaiter(t *testing.T, m *idempotency.Manager, key string, fn func(context.Context) (int, error)) (leaderPanic any, waiterErr error) {
	t.Helper()
	release := make(chan struct{})
	blocked := func(ctx context.Context) (int, error) { <-release; return fn(ctx) }
	lp := make(chan any, 1)
	go func() {
		lp <- callRecovering(func() { _, _ = idempotency.Do(context.Background(), m, key, blocked) })
	}()
	synctest.Wait()
	we := make(chan error, 1)
	go func() {
		var err error
		if p := callRecovering(func() { _, err = idempotency.Do(context.Background(), m, key, blocked) }); p != nil {
			err = errors.New("the waiter panicked")
		}
		we <- err
	}()
	synctest.Wait()
	close(release)
	return <-lp, <-we
}

func TestPanickingIsPermanentReleasesTheClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		var panics atomic.Int32
		m := newManager(t, store, idempotency.Config{CacheErrors: true, IsPermanent: func(err error) bool {
			if panics.Add(1) == 1 {
				panic("IsPermanent: unexpected error type")
			}
			return false
		}})
		lp, werr := leaderAndWaiter(t, m, "k", func(context.Context) (int, error) { return 0, errors.New("boom") })
		assert.Equal(t, "IsPermanent: unexpected error type", lp)
		assert.ErrorIs(t, werr, idempotency.ErrPanicked)
		assertKeyUsable(t, m, store, "k")
	})
}

// assertKeyUsable checks that a call for key runs fn now, on m and on
// another Manager over the same store.
func assertKeyUsable(t *testing.T, m *idempotency.Manager, store idempotency.Store, key string) {
	t.Helper()
	other := newManager(t, store, idempotency.Config{})
	var runs atomic.Int32
	v, err := idempotency.Do(context.Background(), other, key, counted(&runs, value(42)))
	require.NoError(t, err, "the key is free in the store")
	assert.Equal(t, 42, v)
	r := idempotency.Execute(context.Background(), m, key, "", counted(&runs, value(0)))
	require.NoError(t, r.Err)
	assert.True(t, r.Replayed, "and on the Manager whose callback panicked")
	assert.Equal(t, int32(1), runs.Load())
}

// panicsOnMarshal is a result whose encoding panics (a broken codec).
type panicsOnMarshal struct{}

func (panicsOnMarshal) MarshalJSON() ([]byte, error) { panic("codec: cannot encode") }

func TestPanickingCodecOnWriteReleasesTheClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		m := newManager(t, store, idempotency.Config{})
		release := make(chan struct{})
		lp := make(chan any, 1)
		go func() {
			lp <- callRecovering(func() {
				_, _ = idempotency.Do(context.Background(), m, "k", func(context.Context) (panicsOnMarshal, error) {
					<-release
					return panicsOnMarshal{}, nil
				})
			})
		}()
		synctest.Wait()
		we := make(chan error, 1)
		go func() {
			_, err := idempotency.Do(context.Background(), m, "k", value(panicsOnMarshal{}))
			we <- err
		}()
		synctest.Wait()
		close(release)
		assert.Equal(t, "codec: cannot encode", <-lp)
		assert.ErrorIs(t, <-we, idempotency.ErrPanicked)
		assertKeyUsable(t, m, store, "k")
	})
}

// panicsOnUnmarshal is a result whose decoding panics while armed.
type panicsOnUnmarshal struct{ N int }

var unmarshalPanics atomic.Bool

func (p *panicsOnUnmarshal) UnmarshalJSON(data []byte) error {
	if unmarshalPanics.Load() {
		panic("codec: cannot decode")
	}
	type plain panicsOnUnmarshal
	return json.Unmarshal(data, (*plain)(p))
}

func TestPanickingCodecOnReplayFreesTheWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newJSONStore(nil)
		m := newManager(t, store, idempotency.Config{})
		_, err := idempotency.Do(context.Background(), newManager(t, store, idempotency.Config{}), "k", value(panicsOnUnmarshal{N: 3}))
		require.NoError(t, err)
		unmarshalPanics.Store(true)
		gate := &gatedClaims{Store: store, gate: "", open: make(chan struct{})}
		m = newManager(t, gate, idempotency.Config{})
		lp := make(chan any, 1)
		go func() {
			lp <- callRecovering(func() { _, _ = idempotency.Do(context.Background(), m, "k", value(panicsOnUnmarshal{})) })
		}()
		synctest.Wait() // the leader waits for the store's answer
		we := make(chan error, 1)
		go func() {
			_, err := idempotency.Do(context.Background(), m, "k", value(panicsOnUnmarshal{}))
			we <- err
		}()
		synctest.Wait()
		close(gate.open)
		assert.Equal(t, "codec: cannot decode", <-lp)
		assert.ErrorIs(t, <-we, idempotency.ErrPanicked, "the waiter is not stranded")
		unmarshalPanics.Store(false)
		r := idempotency.Execute(context.Background(), m, "k", "", value(panicsOnUnmarshal{}))
		require.NoError(t, r.Err)
		assert.True(t, r.Replayed)
		assert.Equal(t, 3, r.Value.N)
	})
}

func TestPanickingListenerLeavesTheKeyUsable(t *testing.T) {
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
				var armed atomic.Bool
				m := newManager(t, store, idempotency.Config{OnEvent: func(ev bulwark.Event) {
					if armed.CompareAndSwap(true, false) {
						panic("listener: " + string(ev.Kind))
					}
				}})
				// A replay's event.
				_, err := idempotency.Do(context.Background(), m, "k", value(1))
				require.NoError(t, err)
				armed.Store(true)
				assert.Equal(t, "listener: idempotency:replayed", callRecovering(func() {
					_, _ = idempotency.Do(context.Background(), m, "k", value(2))
				}))
				v, err := idempotency.Do(context.Background(), m, "k", value(2))
				require.NoError(t, err)
				assert.Equal(t, 1, v, "still replayed")

				// A conflict's event: in progress elsewhere.
				elsewhere := newManager(t, store, idempotency.Config{})
				release := make(chan struct{})
				done := make(chan error, 1)
				go func() {
					_, err := idempotency.Do(context.Background(), elsewhere, "c", func(context.Context) (int, error) { <-release; return 9, nil })
					done <- err
				}()
				synctest.Wait()
				armed.Store(true)
				assert.Equal(t, "listener: idempotency:conflict", callRecovering(func() {
					_, _ = idempotency.Do(context.Background(), m, "c", value(0))
				}))
				close(release)
				require.NoError(t, <-done)
				v, err = idempotency.Do(context.Background(), m, "c", value(0))
				require.NoError(t, err)
				assert.Equal(t, 9, v)
			})
		})
	}
}

// TestPanickingListenerOfAWaiter: the listener panics on the waiter's
// replayed event: the panic reaches the waiter's caller; the leader and
// the key are unaffected.
func TestPanickingListenerOfAWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var armed atomic.Bool
		m := newManager(t, nil, idempotency.Config{OnEvent: func(ev bulwark.Event) {
			if armed.CompareAndSwap(true, false) {
				panic("listener")
			}
		}})
		armed.Store(true)
		lp, werr := leaderAndWaiter(t, m, "k", func(context.Context) (int, error) { return 6, nil })
		assert.Nil(t, lp, "the leader emits no event")
		assert.EqualError(t, werr, "the waiter panicked")
		v, err := idempotency.Do(context.Background(), m, "k", value(0))
		require.NoError(t, err)
		assert.Equal(t, 6, v)
	})
}

func TestPanickingKeyFuncClaimsNothing(t *testing.T) {
	store := newJSONStore(nil)
	m := newManager(t, store, idempotency.Config{})
	var runs atomic.Int32
	next := counted(&runs, value(1))
	broken := idempotency.Middleware[int](m, func(ctx context.Context) (string, string, bool) {
		panic("key function: missing order ID")
	})(next)
	assert.Equal(t, "key function: missing order ID", callRecovering(func() {
		_, _ = broken(context.Background())
	}))
	assert.Zero(t, store.count("claim"))
	assert.Zero(t, runs.Load())
	v, err := idempotency.Middleware[int](m, nil)(next)(idempotency.WithKey(context.Background(), "k"))
	require.NoError(t, err)
	assert.Equal(t, 1, v)
}

// panickyRelease is a store whose Release panics.
type panickyRelease struct{ idempotency.Store }

func (panickyRelease) Release(context.Context, string, string) error { panic("store: release") }

// TestPanicWhileReleasingStillFreesTheWaiters: fn panics and so does the
// store's Release: the waiters are freed all the same.
func TestPanicWhileReleasingStillFreesTheWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, panickyRelease{newMemory(t, 0)}, idempotency.Config{Lease: time.Minute})
		lp, werr := leaderAndWaiter(t, m, "k", func(context.Context) (int, error) { panic("fn") })
		assert.Equal(t, "store: release", lp)
		assert.ErrorIs(t, werr, idempotency.ErrPanicked)
		time.Sleep(time.Minute) // the claim lapses with its lease
		v, err := idempotency.Do(context.Background(), m, "k", value(1))
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	})
}
