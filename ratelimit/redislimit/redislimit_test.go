package redislimit_test

import (
	"context"
	"errors"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/ratelimit"
	"github.com/bulwark-go/bulwark/ratelimit/redislimit"
)

func newShared(t *testing.T, client redis.UniversalClient, cfg redislimit.Config) *redislimit.Limiter {
	t.Helper()
	if cfg.Key == "" {
		cfg.Key = testKey()
	}
	l, err := redislimit.New(client, cfg)
	require.NoError(t, err)
	return l
}

// TestConfig: every invalid argument is named.
func TestConfig(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for _, c := range []struct {
		cfg   redislimit.Config
		field string
	}{
		{redislimit.Config{Rate: 1}, "Config.Key"},
		{redislimit.Config{Key: "k"}, "Config.Rate"},
		{redislimit.Config{Key: "k", Rate: -1}, "Config.Rate"},
		{redislimit.Config{Key: "k", Rate: math.NaN()}, "Config.Rate"},
		{redislimit.Config{Key: "k", Rate: math.Inf(1)}, "Config.Rate"},
		{redislimit.Config{Key: "k", Rate: 2e9}, "Config.Rate"},
		{redislimit.Config{Key: "k", Rate: 1, Burst: -1}, "Config.Burst"},
		{redislimit.Config{Key: "k", Rate: 1, Cooldown: -1}, "Config.Cooldown"},
	} {
		_, err := redislimit.New(client, c.cfg)
		assert.ErrorIs(t, err, redislimit.ErrInvalid, c.field)
		assert.ErrorContains(t, err, "redislimit: invalid "+c.field+":", c.field)
	}
	_, err := redislimit.New(nil, redislimit.Config{Key: "k", Rate: 1})
	assert.ErrorIs(t, err, redislimit.ErrInvalid)
	assert.ErrorContains(t, err, "client: nil")

	var nilL *redislimit.Limiter
	assert.ErrorIs(t, nilL.Reserve(context.Background(), time.Now(), 0).Err, redislimit.ErrInvalid)
	assert.Equal(t, redislimit.Stats{}, nilL.Stats())
	l, err := redislimit.New(client, redislimit.Config{Key: "k", Rate: 1})
	require.NoError(t, err)
	var nilCtx context.Context
	assert.ErrorIs(t, l.Reserve(nilCtx, time.Now(), 0).Err, redislimit.ErrInvalid)
	assert.Equal(t, redislimit.Stats{}, l.Stats(), "nothing counted")
}

// TestSharedBetweenLimiters: two limiters with their own clients and the
// same Key share one limit; another Key is a limit of its own.
func TestSharedBetweenLimiters(t *testing.T) {
	addr := redisAddr(t)
	key := testKey()
	a := newShared(t, newClient(t, addr), redislimit.Config{Key: key, Rate: 1})
	b := newShared(t, newClient(t, addr), redislimit.Config{Key: key, Rate: 1})
	other := newShared(t, newClient(t, addr), redislimit.Config{Rate: 1})
	ctx := t.Context()

	r := a.Reserve(ctx, time.Now(), 0)
	require.NoError(t, r.Err)
	assert.True(t, r.OK, "the first call takes the token")
	r = b.Reserve(ctx, time.Now(), 0)
	require.NoError(t, r.Err)
	assert.False(t, r.OK, "the other process finds it taken")
	assert.Greater(t, r.Delay, 500*time.Millisecond, "next token in about a second")
	assert.LessOrEqual(t, r.Delay, time.Second)
	r = other.Reserve(ctx, time.Now(), 0)
	assert.True(t, r.OK, "another key is another limit")

	assert.Equal(t, redislimit.Stats{Allowed: 1}, a.Stats())
	assert.Equal(t, redislimit.Stats{Denied: 1}, b.Stats())
}

// TestThroughRateLimiter: as a ratelimit Backend, a call whose token is
// too far away is refused at once; calls that may wait are spaced by the
// shared limit.
func TestThroughRateLimiter(t *testing.T) {
	addr := redisAddr(t)
	shared := newShared(t, newClient(t, addr), redislimit.Config{Rate: 0.1}) // one call per 10s
	var events []bulwark.Event
	l, err := ratelimit.New("notion", ratelimit.Config{Backend: shared, MaxWait: 2 * time.Second,
		OnEvent: func(e bulwark.Event) { events = append(events, e) }})
	require.NoError(t, err)
	require.NoError(t, l.Wait(t.Context()))
	start := time.Now()
	err = l.Wait(t.Context())
	assert.Less(t, time.Since(start), 2*time.Second, "refused without waiting out MaxWait")
	assert.ErrorIs(t, err, ratelimit.ErrLimited)
	assert.ErrorIs(t, err, bulwark.ErrRejected)
	require.Len(t, events, 1)
	assert.Greater(t, events[0].Duration, 9*time.Second, "the wait the call would have needed")

	fast := newShared(t, newClient(t, addr), redislimit.Config{Rate: 20})
	l2, err := ratelimit.New("fast", ratelimit.Config{Backend: fast})
	require.NoError(t, err)
	start = time.Now()
	for range 5 {
		require.NoError(t, l2.Wait(t.Context()))
	}
	assert.GreaterOrEqual(t, time.Since(start), 190*time.Millisecond, "5 calls at 20/s span 200ms")
	st := fast.Stats()
	assert.Equal(t, int64(5), st.Allowed)
	assert.Positive(t, st.Denied, "the waiting calls asked, learned the wait, and asked again")
}

// TestFailOpenWhenRedisStops: with Redis gone, calls take their tokens
// from the local fallback (still limited) for Cooldown without trying
// Redis, and go back to Redis once it is up and the Cooldown has passed.
func TestFailOpenWhenRedisStops(t *testing.T) {
	s := ownRedis(t)
	var errs []error
	var mu sync.Mutex
	shared := newShared(t, newClient(t, s.Addr()), redislimit.Config{Rate: 1, Cooldown: 300 * time.Millisecond,
		OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }})
	l, err := ratelimit.New("svc", ratelimit.Config{Backend: shared, MaxWait: -1})
	require.NoError(t, err)

	require.NoError(t, l.Wait(t.Context()), "Redis gives the token")
	assert.ErrorIs(t, l.Wait(t.Context()), ratelimit.ErrLimited, "Redis has no second one")

	s.Stop()
	assert.NoError(t, l.Wait(t.Context()), "fails open: the local bucket's token")
	st := shared.Stats()
	assert.Equal(t, int64(1), st.Failures)
	assert.Equal(t, int64(1), st.Fallbacks)
	assert.True(t, st.FailingOpen)
	assert.Error(t, st.LastError)
	mu.Lock()
	require.Len(t, errs, 1)
	assert.ErrorContains(t, errs[0], "falling back to the local limiter")
	mu.Unlock()

	assert.ErrorIs(t, l.Wait(t.Context()), ratelimit.ErrLimited, "the local limiter still limits")
	st = shared.Stats()
	assert.Equal(t, int64(1), st.Failures, "Redis not tried during the cooldown")
	assert.Equal(t, int64(2), st.Fallbacks)

	require.NoError(t, s.Restart())
	time.Sleep(350 * time.Millisecond) // the cooldown (real time: Redis is a real server)
	require.NoError(t, l.Wait(t.Context()), "the restarted server (empty) gives a token")
	st = shared.Stats()
	assert.False(t, st.FailingOpen)
	assert.Equal(t, int64(2), st.Allowed, "back on Redis")
}

// TestFailOpenDeadPort: a server that never was: every call falls back.
func TestFailOpenDeadPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nobody listens there now
	var failures atomic.Int64
	shared := newShared(t, newClient(t, addr), redislimit.Config{Rate: 1, OnError: func(error) { failures.Add(1) }})
	r := shared.Reserve(t.Context(), time.Now(), 0)
	assert.True(t, r.OK)
	assert.NoError(t, r.Err)
	r = shared.Reserve(t.Context(), time.Now(), 0)
	assert.False(t, r.OK, "the fallback has Rate 1, Burst 1")
	assert.Equal(t, int64(1), failures.Load())
	assert.Error(t, shared.Stats().LastError)
}

// TestFailOpenOnTimeout: a server that accepts but never answers: each
// round trip gives up after Timeout (the client honours context
// deadlines) and the call falls back.
func TestFailOpenOnTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns sync.WaitGroup
	var held []net.Conn
	var mu sync.Mutex
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
		for _, c := range held {
			c.Close()
		}
	})
	client := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	shared := newShared(t, client, redislimit.Config{Rate: 1, Timeout: 50 * time.Millisecond})
	start := time.Now()
	r := shared.Reserve(t.Context(), time.Now(), 0)
	assert.True(t, r.OK, "the fallback's token")
	assert.Less(t, time.Since(start), 2*time.Second, "gave up on Redis after Timeout, not the client's 3s read timeout")
	st := shared.Stats()
	assert.Error(t, st.LastError)
	assert.Equal(t, int64(1), st.Failures)
}

// TestCallerCancelIsNotAFailure: a call whose own context ends during the
// round trip gets its cause and does not start a cooldown.
func TestCallerCancelIsNotAFailure(t *testing.T) {
	shared := newShared(t, newClient(t, redisAddr(t)), redislimit.Config{Rate: 1})
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("caller left")
	cancel(cause)
	r := shared.Reserve(ctx, time.Now(), 0)
	assert.Equal(t, cause, r.Err)
	assert.False(t, r.OK)
	st := shared.Stats()
	assert.Zero(t, st.Failures)
	assert.False(t, st.FailingOpen)
	// Through a Limiter, the same call never reaches Redis.
	l, err := ratelimit.New("svc", ratelimit.Config{Backend: shared})
	require.NoError(t, err)
	assert.Equal(t, cause, l.Wait(ctx))
}

// TestFractionalRates: fractional rates space calls 1/rate apart.
func TestFractionalRates(t *testing.T) {
	addr := redisAddr(t)
	for _, rate := range []float64{0.5, 2.5} {
		shared := newShared(t, newClient(t, addr), redislimit.Config{Rate: rate})
		require.True(t, shared.Reserve(t.Context(), time.Now(), 0).OK)
		r := shared.Reserve(t.Context(), time.Now(), 0)
		require.False(t, r.OK)
		want := time.Duration(float64(time.Second) / rate)
		assert.InDelta(t, want, r.Delay, float64(50*time.Millisecond), "rate %v", rate)
	}
}

// TestPauseHoldsEveryProcess: a pause in one process's limiter moves the
// shared record, so another process's limiter learns the next token is
// that far away: a call that may wait waits, one that may not is refused
// at once. A pause only grows; a huge one saturates.
func TestPauseHoldsEveryProcess(t *testing.T) {
	addr := redisAddr(t)
	key := testKey()
	here := newShared(t, newClient(t, addr), redislimit.Config{Key: key, Rate: 10, Burst: 3})
	there := newShared(t, newClient(t, addr), redislimit.Config{Key: key, Rate: 10, Burst: 3})
	l, err := ratelimit.New("notion", ratelimit.Config{Backend: here})
	require.NoError(t, err)
	var _ ratelimit.Pauser = here

	l.PauseFor(600 * time.Millisecond)
	r := there.Reserve(t.Context(), time.Now(), 0)
	require.NoError(t, r.Err)
	assert.False(t, r.OK, "the other process is paused too")
	assert.InDelta(t, 600*time.Millisecond, r.Delay, float64(100*time.Millisecond))

	other, err := ratelimit.New("notion", ratelimit.Config{Backend: there, MaxWait: 100 * time.Millisecond})
	require.NoError(t, err)
	start := time.Now()
	assert.ErrorIs(t, other.Wait(t.Context()), ratelimit.ErrLimited)
	assert.Less(t, time.Since(start), 300*time.Millisecond, "refused at once")

	here.PauseFor(100 * time.Millisecond) // shorter: no change
	r = there.Reserve(t.Context(), time.Now(), 0)
	assert.Greater(t, r.Delay, 300*time.Millisecond)

	patient, err := ratelimit.New("notion", ratelimit.Config{Backend: there})
	require.NoError(t, err)
	require.NoError(t, patient.Wait(t.Context()))
	assert.GreaterOrEqual(t, time.Since(start), 450*time.Millisecond, "waited for the pause")
	// After the pause, calls resume at the rate, without a burst.
	r = there.Reserve(t.Context(), time.Now(), 0)
	assert.False(t, r.OK)
	assert.InDelta(t, 100*time.Millisecond, r.Delay, float64(50*time.Millisecond))
	assert.Zero(t, here.Stats().Failures)

	// A pause of math.MaxInt64 is capped, not an error.
	here.PauseFor(math.MaxInt64)
	assert.Zero(t, here.Stats().Failures)
	r = there.Reserve(t.Context(), time.Now(), 0)
	assert.False(t, r.OK)
	assert.Greater(t, r.Delay, 50*365*24*time.Hour)
	here.PauseFor(0)
	here.PauseFor(-1)
}

// TestPauseFailure: a pause that cannot reach Redis is reported, counted,
// and starts no cooldown.
func TestPauseFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	var errs []error
	shared := newShared(t, newClient(t, addr), redislimit.Config{Rate: 1, OnError: func(err error) { errs = append(errs, err) }})
	shared.PauseFor(time.Second)
	require.Len(t, errs, 1)
	assert.ErrorContains(t, errs[0], "pausing the shared limit")
	st := shared.Stats()
	assert.Equal(t, int64(1), st.Failures)
	assert.False(t, st.FailingOpen)
}
