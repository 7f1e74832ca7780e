package ratelimit_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/ratelimit"
)

func newLimiter(t *testing.T, name string, cfg ratelimit.Config) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(name, cfg)
	require.NoError(t, err)
	return l
}

// recorder is a fake service that records when each call reached it.
type recorder struct {
	mu    sync.Mutex
	times []time.Time
}

func (r *recorder) call(context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, time.Now())
	return len(r.times), nil
}

// gaps returns the intervals between the recorded calls, in time order.
func (r *recorder) gaps() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := slices.Clone(r.times)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var g []time.Duration
	for i := 1; i < len(ts); i++ {
		g = append(g, ts[i].Sub(ts[i-1]))
	}
	return g
}

// TestSpacing: Rate 5/s, Burst 1: 100 calls, concurrent or one after the
// other, reach the service exactly 200ms apart.
func TestSpacing(t *testing.T) {
	want := slices.Repeat([]time.Duration{200 * time.Millisecond}, 99)
	t.Run("concurrent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiter(t, "svc", ratelimit.Config{Rate: 5, Burst: 1})
			svc := &recorder{}
			start := time.Now()
			var wg sync.WaitGroup
			for range 100 {
				wg.Go(func() {
					_, err := ratelimit.Do(t.Context(), l, svc.call)
					assert.NoError(t, err)
				})
			}
			wg.Wait()
			assert.Equal(t, want, svc.gaps())
			assert.Equal(t, 99*200*time.Millisecond, time.Since(start))
			st := l.Stats()
			assert.Equal(t, int64(100), st.Admitted)
			assert.Equal(t, int64(99), st.Delayed)
			assert.Zero(t, st.Rejected)
		})
	})
	t.Run("sequential", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiter(t, "svc", ratelimit.Config{Rate: 5, Burst: 1})
			svc := &recorder{}
			for range 100 {
				_, err := ratelimit.Do(t.Context(), l, svc.call)
				require.NoError(t, err)
			}
			assert.Equal(t, want, svc.gaps())
		})
	})
}

// TestBurst: after a quiet period Burst calls go at once, then the rate.
func TestBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, "svc", ratelimit.Config{Rate: 10, Burst: 3})
		start := time.Now()
		for range 3 {
			require.NoError(t, l.Wait(t.Context()))
		}
		assert.Equal(t, start, time.Now())
		require.NoError(t, l.Wait(t.Context()))
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
	})
}

// TestRefusedAtOnce: a call whose token would come after MaxWait, or
// after its context's deadline, is refused at once (virtual time does not
// move), consumes no token, and is reported.
func TestRefusedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []bulwark.Event
		l := newLimiter(t, "notion", ratelimit.Config{Rate: 5, Burst: 1, MaxWait: 100 * time.Millisecond,
			OnEvent: func(e bulwark.Event) { events = append(events, e) }})
		require.NoError(t, l.Wait(t.Context()))

		start := time.Now()
		ctx, rep := bulwark.WithReport(t.Context())
		ran := false
		_, err := ratelimit.Do(ctx, l, func(context.Context) (int, error) { ran = true; return 0, nil })
		assert.False(t, ran)
		assert.Equal(t, start, time.Now(), "no sleeping")
		assert.ErrorIs(t, err, ratelimit.ErrLimited)
		assert.ErrorIs(t, err, bulwark.ErrRejected)
		assert.NotErrorIs(t, err, ratelimit.ErrPaused)
		assert.EqualError(t, err, "ratelimit notion: rate limit exceeded")
		assert.True(t, rep.Rejected())
		require.Len(t, events, 1)
		assert.Equal(t, bulwark.RateLimitRejected, events[0].Kind)
		assert.Equal(t, "ratelimit:rejected", events[0].Kind.String())
		assert.Equal(t, "notion", events[0].Executor)
		assert.Equal(t, 200*time.Millisecond, events[0].Duration, "the wait it would have needed")
		assert.Equal(t, err, events[0].Err)

		// A deadline sooner than the token: refused at once, too.
		time.Sleep(150 * time.Millisecond) // the token is 50ms away
		dl, cancel := context.WithTimeout(t.Context(), 40*time.Millisecond)
		defer cancel()
		start = time.Now()
		err = l.Wait(dl)
		assert.ErrorIs(t, err, ratelimit.ErrLimited)
		assert.Equal(t, start, time.Now(), "no sleeping")

		// The refused calls took nothing: the next token is where it was.
		require.NoError(t, l.Wait(t.Context()))
		assert.Equal(t, 50*time.Millisecond, time.Since(start))
		assert.Equal(t, int64(2), l.Stats().Rejected)
	})
}

// TestNeverWait: a negative MaxWait refuses every call that finds no
// token; MaxInt64 waits as long as needed.
func TestMaxWaitBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, "svc", ratelimit.Config{Rate: 1, MaxWait: -1})
		require.NoError(t, l.Wait(t.Context()))
		assert.ErrorIs(t, l.Wait(t.Context()), ratelimit.ErrLimited)
		time.Sleep(time.Second)
		assert.NoError(t, l.Wait(t.Context()))
	})
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, "svc", ratelimit.Config{Rate: 1.0 / 3600, MaxWait: math.MaxInt64})
		require.NoError(t, l.Wait(t.Context()))
		start := time.Now()
		require.NoError(t, l.Wait(t.Context()))
		assert.Equal(t, time.Hour, time.Since(start))
	})
}

// TestCanceledWhileWaiting: a call whose context ends while it waits
// returns the cause at that moment, and gives its token back.
func TestCanceledWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, "svc", ratelimit.Config{Rate: 1})
		require.NoError(t, l.Wait(t.Context()))
		ctx, cancel := context.WithCancelCause(t.Context())
		cause := errors.New("caller left")
		time.AfterFunc(300*time.Millisecond, func() { cancel(cause) })
		start := time.Now()
		assert.Equal(t, cause, l.Wait(ctx))
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
		// Its token is back: the next call gets it at 1s, not 2s.
		require.NoError(t, l.Wait(t.Context()))
		assert.Equal(t, time.Second, time.Since(start))
		st := l.Stats()
		assert.Equal(t, int64(1), st.Canceled)
		assert.Equal(t, 300*time.Millisecond+700*time.Millisecond, st.Waited)

		// An already-done context with no token there: its cause.
		assert.Equal(t, cause, l.Wait(ctx))
	})
}

// TestPause: PauseFor holds every call until the pause ends; calls that
// may not wait so long are refused at once with ErrPaused; a pause only
// grows; Resume ends it.
func TestPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []bulwark.Event
		l := newLimiter(t, "notion", ratelimit.Config{Rate: 100, Burst: 10, MaxWait: 5 * time.Second,
			OnEvent: func(e bulwark.Event) { events = append(events, e) }})
		start := time.Now()
		l.PauseFor(2 * time.Second)
		require.Len(t, events, 1)
		assert.Equal(t, bulwark.RateLimitPaused, events[0].Kind)
		assert.Equal(t, "ratelimit:paused", events[0].Kind.String())
		assert.Equal(t, 2*time.Second, events[0].Duration)
		assert.Equal(t, start.Add(2*time.Second), l.PausedUntil())
		l.PauseFor(time.Second) // shorter: ignored
		assert.Len(t, events, 1)
		assert.Equal(t, start.Add(2*time.Second), l.PausedUntil())

		// Every caller backs off, not just one.
		svc := &recorder{}
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				_, err := ratelimit.Do(t.Context(), l, svc.call)
				assert.NoError(t, err)
			})
		}
		// A caller with 1s left is refused at once.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := l.Wait(ctx)
		cancel()
		assert.ErrorIs(t, err, ratelimit.ErrPaused)
		assert.ErrorIs(t, err, ratelimit.ErrLimited)
		assert.ErrorIs(t, err, bulwark.ErrRejected)
		assert.EqualError(t, err, "ratelimit notion: paused")
		assert.Equal(t, start, time.Now())
		wg.Wait()
		for _, at := range svc.times {
			assert.Equal(t, start.Add(2*time.Second), at, "calls resume when the pause ends, together within the burst")
		}
		assert.True(t, l.PausedUntil().IsZero())

		// A pause longer than MaxWait refuses at once; Resume ends it.
		l.PauseFor(10 * time.Second)
		now := time.Now()
		assert.ErrorIs(t, l.Wait(t.Context()), ratelimit.ErrPaused)
		assert.Equal(t, now, time.Now())
		l.Resume()
		assert.NoError(t, l.Wait(t.Context()))
		assert.Equal(t, now, time.Now())
	})
}

// TestPauseDuringWait: a pause that begins while a call waits for its
// token holds that call too.
func TestPauseDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, "svc", ratelimit.Config{Rate: 1})
		require.NoError(t, l.Wait(t.Context()))
		start := time.Now()
		time.AfterFunc(500*time.Millisecond, func() { l.PauseFor(3 * time.Second) })
		require.NoError(t, l.Wait(t.Context()))
		assert.Equal(t, 3500*time.Millisecond, time.Since(start))
	})
}

// TestPauseAfterTokenGivesItBack: a call that got its token after a wait
// and then meets a pause it may not wait for is refused, and its token
// goes back to the bucket: nothing is spent on a call that did not run.
// (A call whose context ends during a pause it waits out cannot give its
// token back: x/time/rate's Reservation.CancelAt restores nothing once
// the token's time has passed; the bucket refills from then on.)
func TestPauseAfterTokenGivesItBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb, err := ratelimit.NewTokenBucket(1, 1)
		require.NoError(t, err)
		l := newLimiter(t, "svc", ratelimit.Config{Backend: tb, MaxWait: 3 * time.Second})
		require.NoError(t, l.Wait(t.Context())) // the burst's token
		// The next token comes at 1s; a pause longer than MaxWait begins
		// just before.
		time.AfterFunc(999*time.Millisecond, func() { l.PauseFor(10 * time.Second) })
		assert.ErrorIs(t, l.Wait(t.Context()), ratelimit.ErrPaused)
		assert.Equal(t, int64(1), l.Stats().Admitted, "the refused call was not admitted")
		l.Resume()
		r := tb.Reserve(t.Context(), time.Now(), 0)
		assert.True(t, r.OK, "the token the call reserved is back in the bucket")
	})
}

// TestPauseSaturates: PauseFor(math.MaxInt64) pauses "forever" without
// overflowing: a call with a deadline is refused at once, a call without
// waits until its context ends.
func TestPauseSaturates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, "svc", ratelimit.Config{Rate: 10})
		time.Sleep(time.Hour) // the limiter's clock has moved past its epoch
		l.PauseFor(math.MaxInt64)
		l.PauseFor(math.MaxInt64)
		until := l.PausedUntil()
		assert.True(t, until.After(time.Now().Add(200*365*24*time.Hour)), "paused for centuries, got %v", until)

		ctx, cancel := context.WithTimeout(t.Context(), 24*time.Hour)
		defer cancel()
		start := time.Now()
		assert.ErrorIs(t, l.Wait(ctx), ratelimit.ErrPaused)
		assert.Equal(t, start, time.Now())

		ctx2, cancel2 := context.WithCancel(t.Context())
		time.AfterFunc(time.Minute, cancel2)
		assert.ErrorIs(t, l.Wait(ctx2), context.Canceled)
		assert.Equal(t, time.Minute, time.Since(start))

		l.PauseFor(0)
		l.PauseFor(-time.Second)
		assert.Equal(t, until, l.PausedUntil(), "non-positive pauses change nothing")
	})
}

// TestInfiniteRate: math.Inf(1) lets everything through at once.
func TestInfiniteRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, "svc", ratelimit.Config{Rate: math.Inf(1)})
		start := time.Now()
		for range 1000 {
			require.NoError(t, l.Wait(t.Context()))
		}
		assert.Equal(t, start, time.Now())
	})
}

// TestInfiniteRatePaused: an unlimited limiter still pauses (its fast
// path must not skip a pause), and once the pause is over calls go at
// once again.
func TestInfiniteRatePaused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, "svc", ratelimit.Config{Rate: math.Inf(1)})
		start := time.Now()
		l.PauseFor(time.Second)
		require.NoError(t, l.Wait(t.Context()))
		assert.Equal(t, start.Add(time.Second), time.Now(), "waited for the pause")
		for range 3 {
			require.NoError(t, l.Wait(t.Context()))
		}
		assert.Equal(t, start.Add(time.Second), time.Now())
		assert.True(t, l.PausedUntil().IsZero())
		l.PauseFor(time.Second)
		short, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, l.Wait(short), ratelimit.ErrPaused)
		assert.Equal(t, int64(4), l.Stats().Admitted)
	})
}

// TestInvalidInput: nil limiter, context, function or next are errors
// wrapping ErrInvalid and change nothing; a panic in fn reaches the
// caller.
func TestInvalidInput(t *testing.T) {
	l := newLimiter(t, "svc", ratelimit.Config{Rate: 1})
	fn := func(context.Context) (int, error) { return 1, nil }
	var nilCtx context.Context
	assert.ErrorIs(t, l.Wait(nilCtx), ratelimit.ErrInvalid)
	var nilL *ratelimit.Limiter
	assert.ErrorIs(t, nilL.Wait(context.Background()), ratelimit.ErrInvalid)
	_, err := ratelimit.Do[int](context.Background(), l, nil)
	assert.ErrorIs(t, err, ratelimit.ErrInvalid)
	_, err = ratelimit.Do(nilCtx, l, fn)
	assert.ErrorIs(t, err, ratelimit.ErrInvalid)
	_, err = ratelimit.Do(context.Background(), nil, fn)
	assert.ErrorIs(t, err, ratelimit.ErrInvalid)
	_, err = ratelimit.Middleware[int](l)(nil)(context.Background())
	assert.ErrorIs(t, err, ratelimit.ErrInvalid)
	_, err = ratelimit.Middleware[int](nil)(fn)(context.Background())
	assert.ErrorIs(t, err, ratelimit.ErrInvalid)
	nilL.PauseFor(time.Second)
	nilL.Resume()
	assert.Equal(t, ratelimit.Stats{Rate: 1, Burst: 1}, l.Stats(), "nothing counted")
	assert.Equal(t, ratelimit.Stats{}, nilL.Stats())
	assert.Empty(t, nilL.Name())
	assert.Nil(t, nilL.Backend())
	assert.True(t, nilL.PausedUntil().IsZero())
	var nilTB *ratelimit.TokenBucket
	assert.ErrorIs(t, nilTB.Reserve(context.Background(), time.Now(), 0).Err, ratelimit.ErrInvalid)
	assert.Equal(t, 1.0, l.Backend().(*ratelimit.TokenBucket).Tokens(time.Now()), "no token taken")

	v, err := ratelimit.Middleware[int](l)(fn)(context.Background())
	assert.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.PanicsWithValue(t, "boom", func() {
		_, _ = ratelimit.Do(context.Background(), newLimiter(t, "p", ratelimit.Config{Rate: 1}),
			func(context.Context) (int, error) { panic("boom") })
	})
}

// TestConfig: every invalid field is named.
func TestConfig(t *testing.T) {
	tb, err := ratelimit.NewTokenBucket(1, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, tb.Burst())
	for _, c := range []struct {
		cfg   ratelimit.Config
		field string
	}{
		{ratelimit.Config{}, "Rate"},
		{ratelimit.Config{Rate: -1}, "Rate"},
		{ratelimit.Config{Rate: math.NaN()}, "Rate"},
		{ratelimit.Config{Rate: math.Inf(-1)}, "Rate"},
		{ratelimit.Config{Rate: 1, Burst: -1}, "Burst"},
		{ratelimit.Config{Rate: 1, Backend: tb}, "Rate"},
		{ratelimit.Config{Burst: 1, Backend: tb}, "Burst"},
	} {
		_, err := ratelimit.New("svc", c.cfg)
		assert.ErrorIs(t, err, ratelimit.ErrInvalid, c.field)
		assert.ErrorContains(t, err, "ratelimit: invalid Config."+c.field+":", c.field)
		assert.ErrorContains(t, err, `ratelimit "svc"`, c.field)
	}
	l, err := ratelimit.New("", ratelimit.Config{Backend: tb, MaxWait: -1})
	require.NoError(t, err)
	assert.Same(t, tb, l.Backend())
	require.NoError(t, l.Wait(context.Background()))
	assert.Equal(t, ratelimit.ErrLimited, l.Wait(context.Background()), "an unnamed limiter returns the sentinel")
}

// TestAllowedCallAllocatesNothing: a call that finds a token allocates
// nothing; nor does a refusal (without a listener).
func TestAllowedCallAllocatesNothing(t *testing.T) {
	l := newLimiter(t, "svc", ratelimit.Config{Rate: 1e9, Burst: 1e9})
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _ = l.Wait(ctx) }))
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = ratelimit.Do(ctx, l, fn) }))
	none := newLimiter(t, "svc", ratelimit.Config{Rate: 1e-9, MaxWait: -1})
	require.NoError(t, none.Wait(ctx))
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		if none.Wait(ctx) == nil {
			t.Fatal("admitted")
		}
	}), "a refusal")
}

// TestListenerPanic: a panicking listener reaches the refused caller; the
// refused call took no token and the limiter still works.
func TestListenerPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, "svc", ratelimit.Config{Rate: 10, MaxWait: -1,
			OnEvent: func(bulwark.Event) { panic("listener") }})
		require.NoError(t, l.Wait(t.Context()))
		assert.PanicsWithValue(t, "listener", func() { _ = l.Wait(t.Context()) })
		time.Sleep(100 * time.Millisecond)
		assert.NoError(t, l.Wait(t.Context()), "the refused call took nothing")
		assert.PanicsWithValue(t, "listener", func() { l.PauseFor(time.Second) })
		assert.False(t, l.PausedUntil().IsZero(), "the pause holds")
	})
}

// pausingBackend is a Backend that is also a Pauser, recording pauses.
type pausingBackend struct {
	*ratelimit.TokenBucket
	pauses []time.Duration
}

func (p *pausingBackend) PauseFor(d time.Duration) { p.pauses = append(p.pauses, d) }

// TestPausePassesToBackend: PauseFor pauses a backend that implements
// Pauser (so every process sharing it waits), each time the pause grows.
func TestPausePassesToBackend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb, err := ratelimit.NewTokenBucket(10, 1)
		require.NoError(t, err)
		be := &pausingBackend{TokenBucket: tb}
		l := newLimiter(t, "svc", ratelimit.Config{Backend: be})
		l.PauseFor(2 * time.Second)
		l.PauseFor(time.Second) // inside the first: not passed on
		time.Sleep(1500 * time.Millisecond)
		l.PauseFor(time.Second) // ends later: passed on
		assert.Equal(t, []time.Duration{2 * time.Second, time.Second}, be.pauses)
		assert.Zero(t, l.Stats().Rate, "not the local bucket")
	})
}

// A pause refusal matches ErrPaused, ErrLimited and bulwark.ErrRejected
// whether the limiter has a name or not (an unnamed limiter returns the
// ErrPaused sentinel itself, which did not match ErrLimited).
func TestPauseRefusalMatchesErrLimitedUnnamed(t *testing.T) {
	for _, name := range []string{"notion", ""} {
		l := newLimiter(t, name, ratelimit.Config{Rate: 100, MaxWait: -1})
		l.PauseFor(time.Minute)
		err := l.Wait(context.Background())
		assert.ErrorIs(t, err, ratelimit.ErrPaused, "name %q", name)
		assert.ErrorIs(t, err, ratelimit.ErrLimited, "name %q", name)
		assert.ErrorIs(t, err, bulwark.ErrRejected, "name %q", name)
	}
	assert.ErrorIs(t, ratelimit.ErrPaused, ratelimit.ErrLimited)
	assert.NotErrorIs(t, ratelimit.ErrLimited, ratelimit.ErrPaused)
}

func TestStatsPauseLeft(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Zero(t, ratelimit.Stats{}.PauseLeft(now), "never paused")
	assert.Zero(t, ratelimit.Stats{PausedUntil: now}.PauseLeft(now), "ends now")
	assert.Zero(t, ratelimit.Stats{PausedUntil: now.Add(-time.Second)}.PauseLeft(now), "ended")
	assert.Equal(t, 2500*time.Millisecond, ratelimit.Stats{PausedUntil: now.Add(2500 * time.Millisecond)}.PauseLeft(now))
}
